package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// NoSpaceError is returned by Build when the source tree does not fit.
type NoSpaceError struct {
	Source string // the source directory
	Have   int64  // size of the region given to Build, in bytes
	Need   int64  // smallest size (whole MiB) that holds the tree with the same options; 0 if none does
	Reason string // what runs out: clusters or root directory slots
}

func (e *NoSpaceError) Error() string {
	if e.Need == 0 {
		return fmt.Sprintf("fat: content of %s does not fit in %s (%s), nor in any FAT filesystem with these options", e.Source, humanBytes(e.Have), e.Reason)
	}
	return fmt.Sprintf("fat: content of %s needs %s but the partition has %s (%s)", e.Source, humanBytes(e.Need), humanBytes(e.Have), e.Reason)
}

// usage is what a tree needs for a given cluster size.
type usage struct {
	clusters    uint64 // data clusters for files and directories (FAT32 root included)
	rootEntries int    // entries of the root directory
}

func treeUsage(root *node, clusterBytes int64, fat32, hasLabel bool) usage {
	u := usage{rootEntries: root.entries(true, hasLabel)}
	var walk func(d *node, isRoot bool)
	walk = func(d *node, isRoot bool) {
		if !isRoot || fat32 {
			u.clusters += dirClusters(d.entries(isRoot, hasLabel), clusterBytes)
		}
		for _, c := range d.children {
			if c.dir {
				walk(c, false)
			} else {
				u.clusters += uint64((c.size + clusterBytes - 1) / clusterBytes)
			}
		}
	}
	walk(root, true)
	return u
}

func dirClusters(entries int, clusterBytes int64) uint64 {
	n := (int64(entries)*32 + clusterBytes - 1) / clusterBytes
	if n == 0 {
		n = 1
	}
	return uint64(n)
}

// fits reports whether the tree fits a geometry, and if not, why.
func fits(root *node, g *Geometry, hasLabel bool, cache map[uint32]usage) (bool, string) {
	u, ok := cache[g.SectorsPerCluster]
	if !ok {
		u = treeUsage(root, g.ClusterBytes(), g.FATType == 32, hasLabel)
		cache[g.SectorsPerCluster] = u
	}
	if g.FATType != 32 && u.rootEntries > int(g.RootEntries) {
		return false, fmt.Sprintf("the root directory needs %d entries and FAT%d holds %d; use FAT32 or mkfs.fat -r", u.rootEntries, g.FATType, g.RootEntries)
	}
	if u.clusters > uint64(g.Clusters) {
		return false, fmt.Sprintf("%d clusters of %d bytes needed, FAT%d has %d", u.clusters, g.ClusterBytes(), g.FATType, g.Clusters)
	}
	return true, ""
}

// RequiredSize returns the smallest size, in whole MiB, of a filesystem
// that holds the tree under srcDir with these options.
func RequiredSize(srcDir string, opts Options) (int64, error) {
	if err := opts.validate(); err != nil {
		return 0, err
	}
	root, err := scanTree(srcDir)
	if err != nil {
		return 0, err
	}
	need := requiredSize(root, opts)
	if need == 0 {
		return 0, fmt.Errorf("fat: content of %s does not fit in any FAT filesystem with these options", srcDir)
	}
	return need, nil
}

func requiredSize(root *node, opts Options) int64 {
	hasLabel := hasLabelEntry(opts.Label)
	cache := map[uint32]usage{}
	var data int64
	var walk func(*node)
	walk = func(d *node) {
		for _, c := range d.children {
			data += c.size
			if c.dir {
				walk(c)
			}
		}
	}
	walk(root)
	limit := int64(2 << 40) // 2 TiB, FAT's limit with 512-byte sectors
	switch opts.FATSize {
	case 12:
		limit = 512 * mib // beyond 4084 clusters of 64 KiB
	case 16:
		limit = 8 << 30 // beyond 65524 clusters of 64 KiB
	}
	for m := max(1, data/mib); m*mib <= limit; m++ {
		g, err := ComputeGeometry(m*mib, opts)
		if err != nil {
			continue
		}
		if ok, _ := fits(root, g, hasLabel, cache); ok {
			return m * mib
		}
	}
	return 0
}

// hasLabelEntry reports whether the root directory gets a volume label
// entry: not for an empty label nor for "NO NAME", as with mkfs.fat.
func hasLabelEntry(label string) bool {
	b, err := labelBytes(label)
	return err == nil && string(b[:]) != "NO NAME    "
}

// regionWriter confines writes to [off, off+size) of w.
type regionWriter struct {
	w         io.WriterAt
	off, size int64
}

func (r *regionWriter) WriteAt(p []byte, o int64) (int, error) {
	if o < 0 || o+int64(len(p)) > r.size {
		return 0, fmt.Errorf("fat: internal error: write of %d bytes at %d outside the %d-byte region", len(p), o, r.size)
	}
	n, err := r.w.WriteAt(p, r.off+o)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// Build writes a FAT filesystem holding the tree under srcDir into
// [offset, offset+size) of dst. The layout is the one ComputeGeometry
// gives for size and opts. Nothing is written outside the region; the
// reserved sectors, FATs and FAT12/16 root directory are written in full
// (zeros included) so that no earlier content of the image shows through,
// while free clusters are left untouched (sparse). offset must be a
// multiple of 512.
//
// When the tree does not fit, Build returns a *NoSpaceError before
// writing anything. When it fails later (a source file that cannot be
// read, or that changes size while being copied, or a write error) the
// boot sector has already been cleared, so the region never holds a
// filesystem that looks complete but is not.
func Build(dst io.WriterAt, offset, size int64, srcDir string, opts Options) error {
	if offset < 0 || offset%sectorSize != 0 {
		return fmt.Errorf("fat: offset %d is not a whole number of 512-byte sectors", offset)
	}
	if size < 0 {
		return fmt.Errorf("fat: negative size %d", size)
	}
	g, err := ComputeGeometry(size, opts)
	if err != nil {
		return err
	}
	label, err := labelBytes(opts.Label)
	if err != nil {
		return err
	}
	root, err := scanTree(srcDir)
	if err != nil {
		return err
	}
	hasLabel := hasLabelEntry(opts.Label)
	if ok, why := fits(root, g, hasLabel, map[uint32]usage{}); !ok {
		return &NoSpaceError{Source: srcDir, Have: size, Need: requiredSize(root, opts), Reason: why}
	}
	diskOffset := opts.DiskOffset
	if diskOffset == 0 {
		diskOffset = offset
	}
	if diskOffset/sectorSize > 0xFFFFFFFF {
		return fmt.Errorf("fat: the filesystem starts beyond sector 2^32, which FAT's hidden-sector count cannot record")
	}
	b := &builder{
		w:        &regionWriter{w: dst, off: offset, size: int64(g.TotalSectors) * sectorSize},
		g:        g,
		label:    label,
		hasLabel: hasLabel,
		volumeID: opts.VolumeID,
		hidden:   uint32(diskOffset / sectorSize),
		stamp:    fatTime(opts.Time),
		next:     2,
	}
	return b.build(root)
}

// builder holds the state of one Build.
type builder struct {
	w        *regionWriter
	g        *Geometry
	label    [11]byte
	hasLabel bool
	volumeID uint32
	hidden   uint32
	stamp    stamp
	next     uint32   // next free cluster
	chains   []uint32 // first cluster and length pairs, in allocation order
	buf      []byte
}

func (b *builder) build(root *node) error {
	g := b.g
	// 1. Clear the reserved sectors first: until the end, the region does
	// not look like a filesystem. Also touch the last sector so that the
	// image file covers the whole filesystem.
	if err := b.zero(0, int64(g.ReservedSectors)*sectorSize); err != nil {
		return err
	}
	if err := b.zero(int64(g.TotalSectors-1)*sectorSize, sectorSize); err != nil {
		return err
	}

	// 2. Allocate clusters.
	if err := b.allocAll(root); err != nil {
		return err
	}

	// 3. Directories and file data.
	if err := b.writeDir(root, nil); err != nil {
		return err
	}

	// 4. The FATs.
	if err := b.writeFATs(); err != nil {
		return err
	}

	// 5. FSInfo, the backup boot sector, and last the boot sector.
	return b.writeBootSectors()
}

// allocAll allocates clusters: the FAT32 root first, then depth first in
// name order, each directory before its entries.
func (b *builder) allocAll(root *node) error {
	g := b.g
	cb := g.ClusterBytes()
	if g.FATType == 32 {
		b.alloc(root, dirClusters(root.entries(true, b.hasLabel), cb))
	}
	var alloc func(d *node)
	alloc = func(d *node) {
		for _, c := range d.children {
			if c.dir {
				b.alloc(c, dirClusters(c.entries(false, b.hasLabel), cb))
				alloc(c)
			} else {
				b.alloc(c, uint64((c.size+cb-1)/cb))
			}
		}
	}
	alloc(root)
	if b.next-2 > g.Clusters {
		return fmt.Errorf("fat: internal error: %d clusters allocated of %d", b.next-2, g.Clusters)
	}
	return nil
}

// writeBootSectors writes FSInfo and the backup boot sector (FAT32), and
// last the boot sector, which makes the region a filesystem.
func (b *builder) writeBootSectors() error {
	g := b.g
	boot := b.bootSector()
	if g.FATType == 32 {
		info := b.fsInfo()
		if err := b.write(info, int64(g.InfoSector)*sectorSize); err != nil {
			return err
		}
		if bk := int64(g.BackupBootSector); bk != 0 {
			if err := b.write(boot, bk*sectorSize); err != nil {
				return err
			}
			if bk+int64(g.InfoSector) < int64(g.ReservedSectors) {
				if err := b.write(info, (bk+int64(g.InfoSector))*sectorSize); err != nil {
					return err
				}
			}
		}
	}
	return b.write(boot, 0)
}

func (b *builder) alloc(n *node, clusters uint64) {
	if clusters == 0 {
		return
	}
	n.first, n.clusters = b.next, uint32(clusters)
	b.chains = append(b.chains, n.first, n.clusters)
	b.next += uint32(clusters)
}

func (b *builder) write(p []byte, off int64) error {
	if _, err := b.w.WriteAt(p, off); err != nil {
		return fmt.Errorf("fat: writing the image: %w", err)
	}
	return nil
}

var zeros = make([]byte, 1<<20)

func (b *builder) zero(off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if err := b.write(zeros[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

func (b *builder) clusterOffset(c uint32) int64 {
	return (int64(b.g.DataSector()) + int64(c-2)*int64(b.g.SectorsPerCluster)) * sectorSize
}

// writeDir writes directory d (parent nil for the root), then its files
// and subdirectories.
func (b *builder) writeDir(d, parent *node) error {
	g := b.g
	data, err := b.dirEntries(d, parent)
	if err != nil {
		return err
	}
	off := b.clusterOffset(d.first)
	if parent == nil && g.FATType != 32 {
		off = int64(g.RootDirSector()) * sectorSize
	}
	if err := b.write(data, off); err != nil {
		return err
	}
	for _, c := range d.children {
		if c.dir {
			if err := b.writeDir(c, d); err != nil {
				return err
			}
		} else if c.size > 0 {
			if err := b.copyFile(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// dirEntries is the content of directory d (the root when parent is nil):
// the volume label or the dot entries, then one entry (with its long name
// entries) per child, padded with zeros to the directory's size.
func (b *builder) dirEntries(d, parent *node) ([]byte, error) {
	g := b.g
	isRoot := parent == nil
	var size int64
	if isRoot && g.FATType != 32 {
		size = int64(g.RootEntries) * 32
	} else {
		size = int64(d.clusters) * g.ClusterBytes()
	}
	data := make([]byte, 0, size)
	if isRoot {
		if b.hasLabel {
			data = b.appendEntry(data, b.label, attrVolumeID, 0, 0)
			data[len(data)-32+13] = 0 // no hundredths, as mkfs.fat
		}
	} else {
		var dot, dotdot [11]byte
		fill11(&dot, ".", "")
		fill11(&dotdot, "..", "")
		data = b.appendEntry(data, dot, attrDirectory, d.first, 0)
		up := parent.first
		if parent.rel == "." {
			up = 0 // ".." of a first-level directory is 0, on FAT32 too
		}
		data = b.appendEntry(data, dotdot, attrDirectory, up, 0)
	}
	for _, c := range d.children {
		if c.lfn {
			data = appendLFN(data, c.name, lfnChecksum(c.short))
		}
		attr := byte(attrArchive)
		var fsize uint32
		if c.dir {
			attr = attrDirectory
		} else {
			fsize = uint32(c.size)
			if c.readOnly {
				attr |= attrReadOnly
			}
		}
		data = b.appendEntry(data, c.short, attr, c.first, fsize)
	}
	if int64(len(data)) > size {
		return nil, fmt.Errorf("fat: internal error: directory %s overflows", d.src)
	}
	return data[:size], nil // the rest is zero: end of directory
}

func (b *builder) appendEntry(data []byte, name [11]byte, attr byte, cluster, size uint32) []byte {
	var e [32]byte
	copy(e[:11], name[:])
	e[11] = attr
	le := binary.LittleEndian
	st := b.stamp
	e[13] = st.tenths
	le.PutUint16(e[14:], st.time)
	le.PutUint16(e[16:], st.date)
	le.PutUint16(e[18:], st.date) // last access date
	le.PutUint16(e[20:], uint16(cluster>>16))
	le.PutUint16(e[22:], st.time)
	le.PutUint16(e[24:], st.date)
	le.PutUint16(e[26:], uint16(cluster))
	le.PutUint32(e[28:], size)
	return append(data, e[:]...)
}

// copyFile writes the content of a file into its clusters, zero-filling
// the end of the last cluster.
func (b *builder) copyFile(n *node) error {
	f, err := os.Open(n.src)
	if err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	defer f.Close()
	if b.buf == nil {
		b.buf = make([]byte, 1<<20) // a multiple of every cluster size
	}
	cb := b.g.ClusterBytes()
	off := b.clusterOffset(n.first)
	left := n.size
	for left > 0 {
		chunk := b.buf
		if left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		if _, err := io.ReadFull(f, chunk); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("fat: %s shrank while being copied", n.src)
			}
			return fmt.Errorf("fat: reading %w", err)
		}
		left -= int64(len(chunk))
		if left == 0 {
			// Pad to the end of the cluster.
			end := (int64(len(chunk)) + cb - 1) / cb * cb
			clear(b.buf[len(chunk):end])
			chunk = b.buf[:end]
		}
		if err := b.write(chunk, off); err != nil {
			return err
		}
		off += int64(len(chunk))
	}
	var one [1]byte
	if k, _ := f.Read(one[:]); k != 0 {
		return fmt.Errorf("fat: %s grew while being copied", n.src)
	}
	return nil
}

// writeFATs writes every copy of the FAT: the chains of the allocated
// clusters, and zeros for the free rest.
func (b *builder) writeFATs() error {
	g := b.g
	used := uint64(b.next) // entries 0 .. next-1 are in use
	var usedBytes uint64
	switch g.FATType {
	case 12:
		usedBytes = (used*3 + 1) / 2
	case 16:
		usedBytes = used * 2
	default:
		usedBytes = used * 4
	}
	fatBytes := int64(g.FATSectors) * sectorSize
	n := (int64(usedBytes) + sectorSize - 1) / sectorSize * sectorSize
	fat := make([]byte, n)
	set := func(c uint32, v uint32) {
		switch g.FATType {
		case 12:
			i := c * 3 / 2
			if c&1 == 0 {
				fat[i] = byte(v)
				fat[i+1] = fat[i+1]&0xF0 | byte(v>>8)&0x0F
			} else {
				fat[i] = fat[i]&0x0F | byte(v<<4)
				fat[i+1] = byte(v >> 4)
			}
		case 16:
			binary.LittleEndian.PutUint16(fat[c*2:], uint16(v))
		default:
			binary.LittleEndian.PutUint32(fat[c*4:], v&0x0FFFFFFF)
		}
	}
	// End-of-chain is written as mkfs.fat writes it (0xFF8, 0xFFF8,
	// 0x0FFFFFF8; any value from there up means the same).
	eoc := uint32(0x0FFFFFF8)
	set(0, 0x0FFFFF00|uint32(g.Media))
	set(1, 0x0FFFFFFF)
	for i := 0; i < len(b.chains); i += 2 {
		first, length := b.chains[i], b.chains[i+1]
		for c := first; c < first+length-1; c++ {
			set(c, c+1)
		}
		set(first+length-1, eoc)
	}
	for k := uint32(0); k < g.NumFATs; k++ {
		start := int64(g.ReservedSectors+k*g.FATSectors) * sectorSize
		if err := b.write(fat, start); err != nil {
			return err
		}
		if err := b.zero(start+n, fatBytes-n); err != nil {
			return err
		}
	}
	return nil
}

// bootCode is the code run if a BIOS ever boots this filesystem: it
// prints the message that follows it and waits for a key, then asks the
// BIOS to try the next boot device. The address of the message is patched
// in at offset 5.
var bootCode = []byte{
	0x31, 0xC0, // xor ax, ax
	0x8E, 0xD8, // mov ds, ax
	0xBE, 0x00, 0x00, // mov si, message
	0xAC,       // next: lodsb
	0x84, 0xC0, // test al, al
	0x74, 0x0B, // jz done
	0x56,       // push si
	0xB4, 0x0E, // mov ah, 0x0E (teletype output)
	0xBB, 0x07, 0x00, // mov bx, 0x0007
	0xCD, 0x10, // int 0x10
	0x5E,       // pop si
	0xEB, 0xF0, // jmp next
	0x31, 0xC0, // done: xor ax, ax
	0xCD, 0x16, // int 0x16 (wait for a key)
	0xCD, 0x19, // int 0x19 (boot the next device)
	0xF4,       // hang: hlt
	0xEB, 0xFD, // jmp hang
}

const bootMessage = "This filesystem is not bootable.\r\nPress a key to try the next boot device ...\r\n\x00"

func (b *builder) bootSector() []byte {
	g := b.g
	s := make([]byte, sectorSize)
	le := binary.LittleEndian
	codeAt := 0x3E
	if g.FATType == 32 {
		codeAt = 0x5A
	}
	s[0], s[1], s[2] = 0xEB, byte(codeAt-2), 0x90
	copy(s[3:11], "mkfs.fat") // what tools expect from a Linux-made FAT
	le.PutUint16(s[11:], sectorSize)
	s[13] = byte(g.SectorsPerCluster)
	le.PutUint16(s[14:], uint16(g.ReservedSectors))
	s[16] = byte(g.NumFATs)
	le.PutUint16(s[17:], uint16(g.RootEntries))
	if g.TotalSectors < 65536 {
		le.PutUint16(s[19:], uint16(g.TotalSectors))
	} else {
		le.PutUint32(s[32:], g.TotalSectors)
	}
	s[21] = g.Media
	if g.FATType != 32 {
		le.PutUint16(s[22:], uint16(g.FATSectors))
	}
	le.PutUint16(s[24:], g.SectorsPerTrack)
	le.PutUint16(s[26:], g.Heads)
	le.PutUint32(s[28:], b.hidden)
	vi := 36
	fsType := fmt.Sprintf("FAT%d   ", g.FATType)
	if g.FATType == 32 {
		le.PutUint32(s[36:], g.FATSectors)
		// flags 0 (all FATs mirrored), version 0.0
		le.PutUint32(s[44:], 2) // root directory cluster
		le.PutUint16(s[48:], g.InfoSector)
		le.PutUint16(s[50:], g.BackupBootSector)
		vi = 64
	}
	if g.Media == 0xF8 {
		s[vi] = 0x80 // BIOS drive number: first hard disk
	}
	s[vi+2] = 0x29 // extended boot signature: the next three fields exist
	le.PutUint32(s[vi+3:], b.volumeID)
	copy(s[vi+7:vi+18], b.label[:])
	copy(s[vi+18:vi+26], fsType)
	code := s[codeAt:510]
	copy(code, bootCode)
	copy(code[len(bootCode):], bootMessage)
	le.PutUint16(code[5:], uint16(0x7C00+codeAt+len(bootCode)))
	le.PutUint16(s[510:], 0xAA55)
	return s
}

func (b *builder) fsInfo() []byte {
	s := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(s[0:], 0x41615252)
	le.PutUint32(s[484:], 0x61417272)
	free := b.g.Clusters - (b.next - 2)
	le.PutUint32(s[488:], free)
	// The hint where to start looking for a free cluster: the first free
	// one, as Microsoft's specification has it (mkfs.fat writes the last
	// allocated one, which is how Linux reads the field).
	next := b.next
	if free == 0 {
		next = 0xFFFFFFFF
	}
	le.PutUint32(s[492:], next)
	le.PutUint16(s[510:], 0xAA55)
	return s
}

// stamp is a timestamp in FAT's encoding.
type stamp struct {
	date, time uint16
	tenths     byte // creation time: hundredths of a second, 0-199
}

// fatTime encodes t in UTC, clamped to the range FAT can represent.
func fatTime(t time.Time) stamp {
	t = t.UTC()
	lo := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2107, 12, 31, 23, 59, 59, 990000000, time.UTC)
	if t.Before(lo) {
		t = lo
	}
	if t.After(hi) {
		t = hi
	}
	return stamp{
		date:   uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day()),
		time:   uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2),
		tenths: byte(t.Second()%2*100 + t.Nanosecond()/10000000),
	}
}
