package fat

import (
	"fmt"
)

const (
	sectorSize = 512

	// Cluster count limits used by mkfs.fat 4.2. Counts of 4085 and 4086
	// are avoided because Windows and Linux disagree about whether they
	// mean FAT12 or FAT16.
	maxClusters12 = 4084
	minClusters16 = 4087
	maxClusters16 = 65524
	minClusters32 = 65525
	maxClusters32 = 268435446

	mib = 1 << 20
)

// Geometry is the layout of a FAT filesystem: what its boot sector says.
// Sector numbers and counts are in 512-byte sectors, relative to the start
// of the filesystem.
type Geometry struct {
	FATType           int    // 12, 16 or 32
	TotalSectors      uint32 // sectors the filesystem spans
	SectorsPerCluster uint32
	ReservedSectors   uint32 // sectors before the first FAT
	NumFATs           uint32
	FATSectors        uint32 // sectors of one FAT
	RootEntries       uint32 // FAT12/16 root directory slots; 0 on FAT32
	Clusters          uint32 // data clusters, numbered 2 .. Clusters+1
	Heads             uint16 // CHS geometry recorded in the boot sector
	SectorsPerTrack   uint16
	Media             byte
	BackupBootSector  uint16 // FAT32: sector of the boot sector copy (0 = none)
	InfoSector        uint16 // FAT32: sector of FSInfo
}

// RootSectors is the size of the FAT12/16 root directory region in sectors.
func (g *Geometry) RootSectors() uint32 { return (g.RootEntries*32 + sectorSize - 1) / sectorSize }

// FirstFATSector is the sector of the first FAT.
func (g *Geometry) FirstFATSector() uint32 { return g.ReservedSectors }

// RootDirSector is the first sector of the FAT12/16 root directory region
// (on FAT32 it is where the data region starts).
func (g *Geometry) RootDirSector() uint32 { return g.ReservedSectors + g.NumFATs*g.FATSectors }

// DataSector is the sector of cluster 2, the first data cluster.
func (g *Geometry) DataSector() uint32 { return g.RootDirSector() + g.RootSectors() }

// ClusterBytes is the size of one cluster in bytes.
func (g *Geometry) ClusterBytes() int64 { return int64(g.SectorsPerCluster) * sectorSize }

// FATEntries is how many entries one FAT can hold, counting the two
// reserved ones.
func (g *Geometry) FATEntries() uint64 {
	return uint64(g.FATSectors) * sectorSize * 8 / uint64(g.FATType)
}

// check verifies the invariants every valid layout must satisfy; a failure
// is a bug in ComputeGeometry, reported as an error rather than a panic.
func (g *Geometry) check() error {
	switch {
	case g.FATType != 12 && g.FATType != 16 && g.FATType != 32:
		return fmt.Errorf("internal error: FAT type %d", g.FATType)
	case g.Clusters == 0:
		return fmt.Errorf("internal error: no clusters")
	case uint64(g.Clusters)+2 > g.FATEntries():
		return fmt.Errorf("internal error: %d clusters but only %d FAT entries", g.Clusters, g.FATEntries())
	case uint64(g.DataSector())+uint64(g.Clusters)*uint64(g.SectorsPerCluster) > uint64(g.TotalSectors):
		return fmt.Errorf("internal error: data region overruns the filesystem")
	}
	return nil
}

// ComputeGeometry chooses the layout mkfs.fat (dosfstools 4.2) would choose
// for a filesystem of size bytes on a fixed disk, honouring the options
// that mkfs.fat also takes (FAT type, sectors per cluster, reserved
// sectors, root directory entries, number of FATs, alignment, media byte,
// CHS geometry). Only 512-byte sectors are supported.
func ComputeGeometry(size int64, opts Options) (*Geometry, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("fat: negative filesystem size %d", size)
	}
	devSectors := uint64(size) / sectorSize
	heads, spt := uint64(opts.Heads), uint64(opts.SectorsPerTrack)
	if heads == 0 || spt == 0 {
		heads, spt = guessCHS(devSectors)
	}
	fatType := opts.FATSize
	if fatType == 0 && size >= 512*mib {
		fatType = 32
	}
	l, err := newLayout(devSectors, spt, fatType, opts)
	if err != nil {
		return nil, err
	}
	c, err := l.chooseClusters(size, fatType, startSPC(devSectors, fatType), opts)
	if err != nil {
		return nil, err
	}
	g, err := l.geometry(c, heads, spt, opts)
	if err != nil {
		return nil, err
	}
	// mkfs.fat refuses filesystems whose data area would start less than
	// 32 KiB before the end ("Too few blocks for viable filesystem").
	dataKiB := (uint64(g.DataSector()) + 1) / 2
	if devSectors/2 < dataKiB+32 {
		return nil, fmt.Errorf("fat: %s is too small for a FAT filesystem", humanBytes(size))
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	return g, nil
}

// guessCHS is mkfs.fat's guess of heads and sectors per track when the
// device reports no geometry: the SD card recommendation below 256 MiB,
// LBA-assist translation above.
func guessCHS(devSectors uint64) (heads, spt uint64) {
	if devSectors > 524288 {
		switch {
		case devSectors <= 16*63*1024:
			return 16, 63
		case devSectors <= 32*63*1024:
			return 32, 63
		case devSectors <= 64*63*1024:
			return 64, 63
		case devSectors <= 128*63*1024:
			return 128, 63
		}
		return 255, 63
	}
	spt = 32
	if devSectors <= 4096 {
		spt = 16
	}
	switch {
	case devSectors <= 32768:
		return 2, spt
	case devSectors <= 65536:
		return 4, spt
	case devSectors <= 262144:
		return 8, spt
	}
	return 16, spt
}

// startSPC is the cluster size mkfs.fat starts its search from: 4 sectors
// for FAT12 and FAT16, Microsoft's table for FAT32.
func startSPC(devSectors uint64, fatType int) uint64 {
	if fatType != 32 {
		return 4
	}
	switch {
	case devSectors > 32*1024*1024*2:
		return 64
	case devSectors > 16*1024*1024*2:
		return 32
	case devSectors > 8*1024*1024*2:
		return 16
	case devSectors > 260*1024*2:
		return 8
	}
	return 1
}

// layout is what the cluster search works within: the sectors the
// filesystem spans and the areas before its data.
type layout struct {
	numSectors  uint64
	align       bool // areas are aligned to clusters
	nfats       uint64
	reserved    uint64
	rootEntries uint64
	rootSectors uint64
}

func newLayout(devSectors, spt uint64, fatType int, opts Options) (*layout, error) {
	l := &layout{numSectors: min(devSectors, 0xFFFFFFFF)} // mkfs.fat leaves the rest unused
	l.align = !opts.NoAlign
	if l.align {
		// "needed by DOS and mtools"
		l.numSectors = l.numSectors / spt * spt
	}
	if l.numSectors <= 8192 {
		l.align = false // floppy-sized: mkfs.fat does not align
	}
	l.nfats = uint64(opts.NumFATs)
	if l.nfats == 0 {
		l.nfats = 2
	}
	l.reserved = uint64(opts.ReservedSectors)
	if l.reserved == 0 {
		l.reserved = 1
		if fatType == 32 {
			l.reserved = 32
		}
	}
	if fatType == 32 && l.reserved < 2 {
		return nil, fmt.Errorf("fat: FAT32 needs at least 2 reserved sectors")
	}
	l.rootEntries = uint64(opts.RootEntries)
	if l.rootEntries == 0 {
		l.rootEntries = 512
	}
	if fatType == 32 {
		l.rootEntries = 0
	}
	l.rootSectors = (l.rootEntries*32 + sectorSize - 1) / sectorSize
	return l, nil
}

func (l *layout) alignUp(n, to uint64) uint64 {
	if !l.align {
		return n
	}
	return (n + to - 1) / to * to
}

// clusterCounts are the clusters and FAT sectors each FAT type would have
// with one cluster size (0 clusters: that type does not fit).
type clusterCounts struct {
	c12, c16, c32, f12, f16, f32 uint64
}

// counts computes mkfs.fat's cluster counts for spc sectors per cluster.
func (l *layout) counts(spc uint64, fatSize int) clusterCounts {
	var c clusterCounts
	ss := uint64(sectorSize)
	ar := l.alignUp(l.reserved, spc)
	if ar >= l.numSectors {
		return c
	}
	data32 := l.numSectors - ar
	if rr := l.alignUp(l.rootSectors, spc); rr < data32 {
		data1216 := data32 - rr

		// FAT12: an entry takes 1.5 bytes.
		c.c12 = 2 * (data1216*ss + l.nfats*3) / (2*spc*ss + l.nfats*3)
		c.f12 = l.alignUp(ceilDiv(((c.c12+2)*3+1)>>1, ss), spc)
		c.c12 = sub0(data1216, l.nfats*c.f12) / spc
		if c.c12 > min(c.f12*2*ss/3, maxClusters12) {
			c.c12 = 0
		}

		c.c16 = (data1216*ss + l.nfats*4) / (spc*ss + l.nfats*2)
		c.f16 = l.alignUp(ceilDiv((c.c16+2)*2, ss), spc)
		c.c16 = sub0(data1216, l.nfats*c.f16) / spc
		if c.c16 > min(c.f16*ss/2, maxClusters16) || c.c16 < minClusters16 {
			c.c16 = 0
		}
	}

	c.c32 = (data32*ss + l.nfats*8) / (spc*ss + l.nfats*4)
	c.f32 = l.alignUp(ceilDiv((c.c32+2)*4, ss), spc)
	c.c32 = sub0(data32, l.nfats*c.f32) / spc
	if c.c32 > min(c.f32*ss/4, maxClusters32) {
		c.c32 = 0
	}
	// mkfs.fat allows fewer than 65525 clusters on FAT32 only when FAT32
	// was asked for explicitly.
	if c.c32 < minClusters32 && fatSize != 32 {
		c.c32 = 0
	}
	return c
}

// chosen is the result of the cluster search.
type chosen struct {
	fatType            int
	spc, clusters, fat uint64
}

// chooseClusters doubles the cluster size from spc until the FAT type
// asked for (or, for 0, FAT12 or FAT16) fits, as mkfs.fat does, and picks
// the type: for 0, whichever of FAT12 and FAT16 has more clusters.
func (l *layout) chooseClusters(size int64, fatType int, spc uint64, opts Options) (chosen, error) {
	maxSPC := uint64(128)
	if opts.SectorsPerCluster != 0 {
		spc = uint64(opts.SectorsPerCluster)
		maxSPC = spc
	}
	var c clusterCounts
	for ; spc <= maxSPC; spc <<= 1 {
		c = l.counts(spc, opts.FATSize)
		if (c.c12 != 0 && (fatType == 0 || fatType == 12)) ||
			(c.c16 != 0 && (fatType == 0 || fatType == 16)) ||
			(c.c32 != 0 && fatType == 32) {
			break
		}
	}
	if fatType == 0 {
		fatType = 12
		if c.c16 > c.c12 {
			fatType = 16
		}
	}
	r := chosen{fatType: fatType, spc: spc}
	switch fatType {
	case 12:
		r.clusters, r.fat = c.c12, c.f12
	case 16:
		r.clusters, r.fat = c.c16, c.f16
	default:
		r.clusters, r.fat = c.c32, c.f32
	}
	if r.clusters != 0 && spc <= maxSPC {
		return r, nil
	}
	if opts.SectorsPerCluster != 0 {
		return r, fmt.Errorf("fat: a FAT%d filesystem of %s cannot have %d sectors per cluster (too few or too many clusters); try another cluster size", fatType, humanBytes(size), opts.SectorsPerCluster)
	}
	if opts.FATSize != 0 {
		return r, fmt.Errorf("fat: %s is too small or too large for FAT%d", humanBytes(size), fatType)
	}
	return r, fmt.Errorf("fat: %s is too small or too large for a FAT filesystem", humanBytes(size))
}

// geometry is the boot sector's view of the layout with the clusters
// chosen: the reserved area and root directory rounded to clusters, and
// FAT32's FSInfo and backup boot sector.
func (l *layout) geometry(c chosen, heads, spt uint64, opts Options) (*Geometry, error) {
	reserved := l.alignUp(l.reserved, c.spc)
	if reserved > 0xFFFF {
		return nil, fmt.Errorf("fat: %d reserved sectors do not fit the boot sector", reserved)
	}
	rootEntries := l.rootEntries
	if l.align && c.fatType != 32 {
		rootEntries = l.alignUp(l.rootSectors, c.spc) * (sectorSize / 32)
	}
	g := &Geometry{
		FATType:           c.fatType,
		TotalSectors:      uint32(l.numSectors),
		SectorsPerCluster: uint32(c.spc),
		ReservedSectors:   uint32(reserved),
		NumFATs:           uint32(l.nfats),
		FATSectors:        uint32(c.fat),
		RootEntries:       uint32(rootEntries),
		Clusters:          uint32(c.clusters),
		Heads:             uint16(heads),
		SectorsPerTrack:   uint16(spt),
		Media:             0xF8,
	}
	if opts.MediaByte != 0 {
		g.Media = opts.MediaByte
	}
	if c.fatType == 32 {
		g.InfoSector = 1
		switch {
		case reserved >= 7:
			g.BackupBootSector = 6
		case reserved >= 4: // room for a backup boot sector and its FSInfo
			g.BackupBootSector = uint16(reserved - 2)
		case reserved >= 3:
			g.BackupBootSector = uint16(reserved - 1)
		}
	}
	return g, nil
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// sub0 is a-b, or 0 when b > a.
func sub0(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// humanBytes formats a size for messages: whole MiB when exact, else KiB
// or bytes, with one decimal above 1 MiB.
func humanBytes(n int64) string {
	switch {
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= mib:
		return fmt.Sprintf("%.1f MiB", float64(n)/mib)
	case n >= 1024 && n%1024 == 0:
		return fmt.Sprintf("%d KiB", n/1024)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
