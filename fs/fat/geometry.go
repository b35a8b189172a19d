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
		// mkfs.fat's guess when the device reports no geometry: the SD
		// card recommendation below 256 MiB, LBA-assist translation above.
		switch {
		case devSectors <= 524288:
			switch {
			case devSectors <= 32768:
				heads = 2
			case devSectors <= 65536:
				heads = 4
			case devSectors <= 262144:
				heads = 8
			default:
				heads = 16
			}
			spt = 32
			if devSectors <= 4096 {
				spt = 16
			}
		default:
			switch {
			case devSectors <= 16*63*1024:
				heads = 16
			case devSectors <= 32*63*1024:
				heads = 32
			case devSectors <= 64*63*1024:
				heads = 64
			case devSectors <= 128*63*1024:
				heads = 128
			default:
				heads = 255
			}
			spt = 63
		}
	}

	fatType := opts.FATSize
	if fatType == 0 && size >= 512*mib {
		fatType = 32
	}
	spc := uint64(4) // mkfs.fat's starting point for FAT12 and FAT16
	if fatType == 32 {
		// Microsoft's table for FAT32, as mkfs.fat applies it.
		switch {
		case devSectors > 32*1024*1024*2:
			spc = 64
		case devSectors > 16*1024*1024*2:
			spc = 32
		case devSectors > 8*1024*1024*2:
			spc = 16
		case devSectors > 260*1024*2:
			spc = 8
		default:
			spc = 1
		}
	}

	numSectors := devSectors
	if numSectors > 0xFFFFFFFF {
		numSectors = 0xFFFFFFFF // mkfs.fat leaves the rest unused
	}
	align := !opts.NoAlign
	if align {
		// "needed by DOS and mtools"
		numSectors = numSectors / spt * spt
	}
	if numSectors <= 8192 {
		align = false // floppy-sized: mkfs.fat does not align
	}
	alignUp := func(n, to uint64) uint64 {
		if !align {
			return n
		}
		return (n + to - 1) / to * to
	}

	nfats := uint64(opts.NumFATs)
	if nfats == 0 {
		nfats = 2
	}
	reserved := uint64(opts.ReservedSectors)
	if reserved == 0 {
		reserved = 1
		if fatType == 32 {
			reserved = 32
		}
	}
	if fatType == 32 && reserved < 2 {
		return nil, fmt.Errorf("fat: FAT32 needs at least 2 reserved sectors")
	}
	rootEntries := uint64(opts.RootEntries)
	if rootEntries == 0 {
		rootEntries = 512
	}
	if fatType == 32 {
		rootEntries = 0
	}
	rootSectors := (rootEntries*32 + sectorSize - 1) / sectorSize

	maxSPC := uint64(128)
	if opts.SectorsPerCluster != 0 {
		spc = uint64(opts.SectorsPerCluster)
		maxSPC = spc
	}

	var c12, c16, c32, f12, f16, f32 uint64
	ss := uint64(sectorSize)
	for ; spc <= maxSPC; spc <<= 1 {
		c12, c16, c32, f12, f16, f32 = 0, 0, 0, 0, 0, 0
		ar := alignUp(reserved, spc)
		if ar < numSectors {
			data32 := numSectors - ar
			if rr := alignUp(rootSectors, spc); rr < data32 {
				data1216 := data32 - rr

				// FAT12: an entry takes 1.5 bytes.
				c12 = 2 * (data1216*ss + nfats*3) / (2*spc*ss + nfats*3)
				f12 = alignUp(ceilDiv(((c12+2)*3+1)>>1, ss), spc)
				c12 = sub0(data1216, nfats*f12) / spc
				if c12 > min(f12*2*ss/3, maxClusters12) {
					c12 = 0
				}

				c16 = (data1216*ss + nfats*4) / (spc*ss + nfats*2)
				f16 = alignUp(ceilDiv((c16+2)*2, ss), spc)
				c16 = sub0(data1216, nfats*f16) / spc
				if c16 > min(f16*ss/2, maxClusters16) || c16 < minClusters16 {
					c16 = 0
				}
			}

			c32 = (data32*ss + nfats*8) / (spc*ss + nfats*4)
			f32 = alignUp(ceilDiv((c32+2)*4, ss), spc)
			c32 = sub0(data32, nfats*f32) / spc
			if c32 > min(f32*ss/4, maxClusters32) {
				c32 = 0
			}
			// mkfs.fat allows fewer than 65525 clusters on FAT32 only
			// when FAT32 was asked for explicitly.
			if c32 < minClusters32 && opts.FATSize != 32 {
				c32 = 0
			}
		}
		if (c12 != 0 && (fatType == 0 || fatType == 12)) ||
			(c16 != 0 && (fatType == 0 || fatType == 16)) ||
			(c32 != 0 && fatType == 32) {
			break
		}
	}
	if fatType == 0 {
		fatType = 12
		if c16 > c12 {
			fatType = 16
		}
	}
	var clusters, fatLen uint64
	switch fatType {
	case 12:
		clusters, fatLen = c12, f12
	case 16:
		clusters, fatLen = c16, f16
	default:
		clusters, fatLen = c32, f32
	}
	if clusters == 0 || spc > maxSPC {
		if opts.SectorsPerCluster != 0 {
			return nil, fmt.Errorf("fat: a FAT%d filesystem of %s cannot have %d sectors per cluster (too few or too many clusters); try another cluster size", fatType, humanBytes(size), opts.SectorsPerCluster)
		}
		if opts.FATSize != 0 {
			return nil, fmt.Errorf("fat: %s is too small or too large for FAT%d", humanBytes(size), fatType)
		}
		return nil, fmt.Errorf("fat: %s is too small or too large for a FAT filesystem", humanBytes(size))
	}

	reserved = alignUp(reserved, spc)
	if align && fatType != 32 {
		rootEntries = alignUp(rootSectors, spc) * (ss / 32)
	}

	g := &Geometry{
		FATType:           fatType,
		TotalSectors:      uint32(numSectors),
		SectorsPerCluster: uint32(spc),
		ReservedSectors:   uint32(reserved),
		NumFATs:           uint32(nfats),
		FATSectors:        uint32(fatLen),
		RootEntries:       uint32(rootEntries),
		Clusters:          uint32(clusters),
		Heads:             uint16(heads),
		SectorsPerTrack:   uint16(spt),
		Media:             0xF8,
	}
	if opts.MediaByte != 0 {
		g.Media = opts.MediaByte
	}
	if reserved > 0xFFFF {
		return nil, fmt.Errorf("fat: %d reserved sectors do not fit the boot sector", reserved)
	}
	if fatType == 32 {
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
