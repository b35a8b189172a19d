package partition

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"unsafe"
)

// LabelIDs holds every identifier a partition table needs. The package has no
// randomness: the build derives these from its seed and passes them in.
type LabelIDs struct {
	// DiskGUID is the GPT disk GUID (gpt labels). It must not be zero.
	DiskGUID GUID
	// MBRSignature is the 32-bit disk signature written at offset 0x1B8 of
	// an msdos label (sfdisk's "label-id"). It must not be zero (parted
	// would replace a zero signature with a random one).
	MBRSignature uint32
	// PartitionGUID returns the unique GUID of GPT partition number n (1-based).
	// When nil, the GUID is derived from the disk GUID and n (see
	// DerivedPartitionGUID), so a later step that reopens the disk gets the
	// same GUIDs without being told anything.
	PartitionGUID func(n int) GUID
}

// DerivedPartitionGUID returns the GUID used for GPT partition n when
// LabelIDs.PartitionGUID is nil: a name-based (version 5 style) UUID computed
// with SHA-256 from the disk GUID and the partition number. It is a pure
// function of its arguments.
func DerivedPartitionGUID(disk GUID, n int) GUID {
	h := sha256.New()
	h.Write(disk[:])
	fmt.Fprintf(h, "vmdb2-partition-%d", n)
	var g GUID
	copy(g[:], h.Sum(nil))
	g[6] = g[6]&0x0f | 0x50
	g[8] = g[8]&0x3f | 0x80
	return g
}

// Partition describes one partition as read from, or written to, the table.
type Partition struct {
	// Number is parted's partition number (1-based): the MBR slot on msdos,
	// the entry index on gpt.
	Number int
	// StartSector and SizeSectors are in logical sectors of SectorSize bytes.
	StartSector, SizeSectors int64
	// Offset and Size are the same in bytes.
	Offset, Size int64
	// MBRType is the msdos system id (0x83, 0x0c, 0xef, …); 0 on gpt.
	MBRType byte
	// Bootable is the msdos active flag.
	Bootable bool
	// TypeGUID, GUID, Name and Attributes are the GPT fields; zero on msdos.
	TypeGUID   GUID
	GUID       GUID
	Name       string
	Attributes uint64

	rawCHS    [6]byte // CHS bytes of an entry read from disk, kept on rewrite
	hasRawCHS bool
}

// EndSector returns the last sector of the partition (inclusive).
func (p Partition) EndSector() int64 { return p.StartSector + p.SizeSectors - 1 }

// Disk is an image file or block device with (perhaps) a partition table.
//
// Every method that changes the table (MakeLabel, MakePart, SetFlag) writes it
// to the device before returning (write-through): there is no separate Write,
// and a failed call leaves the device untouched. Open reads back exactly what
// was written, so each step can open the disk, change it and close it.
type Disk struct {
	f          device
	path       string
	blockDev   bool
	sectorSize int64
	length     int64 // in sectors
	// BIOS geometry parted assumes: 4 heads x 32 sectors for files, 255 x 63
	// for block devices.
	heads, sectorsPerTrack int64

	label string // "", "msdos" or "gpt"
	parts []*Partition

	mbrSignature uint32

	diskGUID                GUID
	firstUsable, lastUsable int64
	gptEntries              int
	pmbrBoot                bool

	partGUID func(n int) GUID
}

// Open opens an image file or a block device for reading and writing and reads
// its msdos or GPT partition table, if it has one.
func Open(path string) (*Disk, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open disk: %w", err)
	}
	d := &Disk{f: f, path: path, sectorSize: 512, heads: 4, sectorsPerTrack: 32}
	if err := d.init(f); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// device is what a Disk reads and writes: an open file or block device, or
// the in-memory overlay of a simulated disk (simulate.go).
type device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

const blkSSZGet = 0x1268 // BLKSSZGET ioctl

func (d *Disk) init(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open disk %s: %w", d.path, err)
	}
	if st.Mode()&os.ModeDevice != 0 {
		d.blockDev = true
		d.heads, d.sectorsPerTrack = 255, 63
		var ss int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), blkSSZGet, uintptr(unsafe.Pointer(&ss))); e == 0 && ss >= 512 {
			d.sectorSize = int64(ss)
		}
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("open disk %s: not a regular file or block device", d.path)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("open disk %s: size: %w", d.path, err)
	}
	return d.setSize(size)
}

// setSize records the device's size and reads its partition table.
func (d *Disk) setSize(size int64) error {
	d.length = size / d.sectorSize
	if d.length < 2 {
		return fmt.Errorf("disk %s is too small (%d bytes) for a partition table", d.path, size)
	}
	return d.readTable()
}

// Close closes the device. Changes are already written.
func (d *Disk) Close() error {
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// Path returns the path the disk was opened with.
func (d *Disk) Path() string { return d.path }

// Label returns "msdos", "gpt", or "" when the disk has no partition table.
func (d *Disk) Label() string { return d.label }

// SectorSize returns the logical sector size in bytes.
func (d *Disk) SectorSize() int64 { return d.sectorSize }

// SizeSectors returns the device length in sectors.
func (d *Disk) SizeSectors() int64 { return d.length }

// DiskGUID returns the GPT disk GUID (zero on msdos).
func (d *Disk) DiskGUID() GUID { return d.diskGUID }

// MBRSignature returns the msdos disk signature (0 on gpt).
func (d *Disk) MBRSignature() uint32 { return d.mbrSignature }

// UseIDs sets where the GUIDs of partitions created by later MakePart calls
// come from (only PartitionGUID is used). MakeLabel calls it itself.
func (d *Disk) UseIDs(ids LabelIDs) { d.partGUID = ids.PartitionGUID }

// Partitions returns the partitions in number order.
func (d *Disk) Partitions() []Partition {
	out := make([]Partition, 0, len(d.parts))
	for _, p := range d.parts {
		q := *p
		q.rawCHS, q.hasRawCHS = [6]byte{}, false
		out = append(out, q)
	}
	return out
}

// Partition returns partition number n.
func (d *Disk) Partition(n int) (Partition, bool) {
	for _, p := range d.parts {
		if p.Number == n {
			q := *p
			q.rawCHS, q.hasRawCHS = [6]byte{}, false
			return q, true
		}
	}
	return Partition{}, false
}

func (d *Disk) readSectors(lba, n int64) ([]byte, error) {
	b := make([]byte, n*d.sectorSize)
	if _, err := d.f.ReadAt(b, lba*d.sectorSize); err != nil {
		return nil, fmt.Errorf("read %s at sector %d: %w", d.path, lba, err)
	}
	return b, nil
}

func (d *Disk) writeAt(b []byte, lba int64) error {
	if _, err := d.f.WriteAt(b, lba*d.sectorSize); err != nil {
		return fmt.Errorf("write %s at sector %d: %w", d.path, lba, err)
	}
	return nil
}

func (d *Disk) finish(p *Partition) {
	p.Offset = p.StartSector * d.sectorSize
	p.Size = p.SizeSectors * d.sectorSize
}

func (d *Disk) readTable() error {
	s0, err := d.readSectors(0, 1)
	if err != nil {
		return err
	}
	d.label, d.parts = "", nil
	if s0[510] != 0x55 || s0[511] != 0xaa {
		return nil
	}
	hasGPT := false
	for i := 0; i < 4; i++ {
		if s0[mbrTableOffset+16*i+4] == mbrGPT {
			hasGPT = true
		}
	}
	if hasGPT {
		return d.readGPT(s0)
	}
	// Like parted, tell an msdos table from a FAT/NTFS boot sector by its
	// entries: boot indicators must be 0 or 0x80.
	any := false
	for i := 0; i < 4; i++ {
		e := s0[mbrTableOffset+16*i:]
		if e[0] != 0 && e[0] != 0x80 {
			return nil
		}
		if e[4] != mbrEmpty {
			any = true
		}
	}
	if !any && isBootSector(s0) {
		return nil
	}
	return d.readMBR(s0)
}

// readMBR reads the msdos table of sector 0, s0: only primary
// partitions, each inside the disk.
func (d *Disk) readMBR(s0 []byte) error {
	d.label = "msdos"
	d.mbrSignature = binary.LittleEndian.Uint32(s0[mbrSigOffset:])
	for i := 0; i < 4; i++ {
		e := s0[mbrTableOffset+16*i:]
		t := e[4]
		if t == mbrEmpty {
			continue
		}
		if t == mbrExtended || t == mbrExtLBA || t == mbrLinuxExt {
			return fmt.Errorf("disk %s has an extended partition (number %d); extended and logical partitions are not supported yet: use a fresh image or only primary partitions", d.path, i+1)
		}
		p := &Partition{Number: i + 1, MBRType: t, Bootable: e[0] == 0x80,
			StartSector: int64(binary.LittleEndian.Uint32(e[8:])), SizeSectors: int64(binary.LittleEndian.Uint32(e[12:]))}
		// Like parted (and the GPT reader below): no entry may lie off the
		// disk, which later steps would write past its end.
		if p.SizeSectors == 0 {
			return fmt.Errorf("disk %s: msdos partition %d has no sectors: the table is corrupt; repair it or run mklabel", d.path, p.Number)
		}
		if p.EndSector() >= d.length {
			return fmt.Errorf("disk %s: msdos partition %d (sectors %d..%d) lies outside the disk (%d sectors)", d.path, p.Number, p.StartSector, p.EndSector(), d.length)
		}
		copy(p.rawCHS[0:3], e[1:4])
		copy(p.rawCHS[3:6], e[5:8])
		p.hasRawCHS = true
		d.finish(p)
		d.parts = append(d.parts, p)
	}
	return nil
}

func isBootSector(s0 []byte) bool {
	return string(s0[3:11]) == "NTFS    " || string(s0[54:59]) == "FAT12" || string(s0[54:59]) == "FAT16" || string(s0[82:87]) == "FAT32"
}

func (d *Disk) readGPT(s0 []byte) error {
	d.pmbrBoot = s0[mbrTableOffset] == 0x80
	h1, err := d.readSectors(1, 1)
	if err != nil {
		return err
	}
	hdr, err := parseGPTHeader(h1, d.sectorSize)
	if err != nil {
		hb, err2 := d.readSectors(d.length-1, 1)
		if err2 != nil {
			return err2
		}
		var err3 error
		hdr, err3 = parseGPTHeader(hb, d.sectorSize)
		if err3 != nil {
			return fmt.Errorf("disk %s has a protective MBR but no valid GPT (primary: %v; backup: %v): repair it (e.g. with gdisk) or create a new label with mklabel", d.path, err, err3)
		}
	}
	// The entry size first: the header is untrusted, and its entry array
	// is read whole.
	if hdr.entrySize != gptEntrySize {
		return fmt.Errorf("disk %s: GPT entries of %d bytes are not supported (only %d)", d.path, hdr.entrySize, gptEntrySize)
	}
	n := ceilDiv(int64(hdr.numEntries)*int64(hdr.entrySize), d.sectorSize)
	ents, err := d.readSectors(hdr.entryLBA, n)
	if err != nil {
		return err
	}
	if crc32IEEE(ents[:int64(hdr.numEntries)*int64(hdr.entrySize)]) != hdr.entriesCRC {
		return fmt.Errorf("disk %s: GPT partition entry array checksum mismatch: the table is corrupt; repair it or run mklabel", d.path)
	}
	d.label = "gpt"
	d.diskGUID = hdr.diskGUID
	d.gptEntries = int(hdr.numEntries)
	d.firstUsable = hdr.firstUsable
	d.lastUsable = hdr.lastUsable
	// If the disk grew (backup header not at the end), behave like parted
	// after "Fix": use the space up to the new end.
	if hdr.alt != d.length-1 && hdr.my == 1 {
		d.lastUsable = d.length - 2 - d.gptEntriesSectors()
	}
	for i := 0; i < int(hdr.numEntries); i++ {
		p, ok := decodeGPTEntry(ents[i*gptEntrySize:], i+1)
		if !ok {
			continue
		}
		if p.SizeSectors < 1 || p.StartSector < 0 || p.EndSector() >= d.length {
			return fmt.Errorf("disk %s: GPT partition %d (sectors %d..%d) lies outside the disk (%d sectors)", d.path, i+1, p.StartSector, p.EndSector(), d.length)
		}
		d.finish(&p)
		d.parts = append(d.parts, &p)
	}
	return nil
}

// MakeLabel creates an empty partition table of kind "msdos" or "gpt", like
// `parted -s DEV mklabel KIND`: it also clears the first and last 19 sectors
// (keeping sector 0 when the disk had a GPT, whose protective MBR may hold
// boot code), as parted does to wipe other labels.
func (d *Disk) MakeLabel(kind string, ids LabelIDs) error {
	k := strings.ToLower(strings.TrimSpace(kind))
	switch k {
	case "msdos", "dos", "mbr":
		if ids.MBRSignature == 0 {
			return fmt.Errorf("mklabel msdos: the MBR disk signature must not be zero")
		}
		k = "msdos"
	case "gpt":
		if ids.DiskGUID.IsZero() {
			return fmt.Errorf("mklabel gpt: the disk GUID must not be zero")
		}
	case "aix", "amiga", "bsd", "dvh", "mac", "pc98", "sun", "loop", "atari":
		return fmt.Errorf("mklabel %s: this label type is not supported; supported label types are msdos and gpt", kind)
	default:
		return fmt.Errorf("mklabel %q: unknown label type; supported label types are msdos and gpt", kind)
	}
	if k == "gpt" && d.length < 2*(2+ceilDiv(gptNumEntries*gptEntrySize, d.sectorSize))+1 {
		return fmt.Errorf("mklabel gpt: disk %s (%d sectors) is too small for a GPT", d.path, d.length)
	}
	// Clobber like parted: zero the first and last sectors.
	wasGPT := d.label == "gpt"
	n := 9*1024/d.sectorSize + 1
	first := int64(0)
	if wasGPT {
		first = 1
	}
	cnt := min(n, d.length-first)
	if err := d.writeAt(make([]byte, cnt*d.sectorSize), first); err != nil {
		return err
	}
	tail := d.length - n
	if n >= d.length {
		tail = d.length - 1
	}
	if err := d.writeAt(make([]byte, (d.length-tail)*d.sectorSize), tail); err != nil {
		return err
	}

	d.parts = nil
	d.label = k
	d.partGUID = ids.PartitionGUID
	d.pmbrBoot = false
	if k == "msdos" {
		d.mbrSignature = ids.MBRSignature
		d.diskGUID = GUID{}
	} else {
		d.mbrSignature = 0
		d.diskGUID = ids.DiskGUID
		d.gptEntries = gptNumEntries
		es := d.gptEntriesSectors()
		d.firstUsable = 2 + es
		d.lastUsable = d.length - 2 - es
	}
	return d.write()
}

// write puts the current table on the device and syncs it.
func (d *Disk) write() error {
	s0, err := d.readSectors(0, 1)
	if err != nil {
		return err
	}
	switch d.label {
	case "msdos":
		if s0[0] == 0 {
			// parted puts its own boot code here; we leave it empty (the
			// bootloader step writes its own).
			clear(s0)
		}
		binary.LittleEndian.PutUint32(s0[mbrSigOffset:], d.mbrSignature)
		d.encodeMBR(s0)
		if err := d.writeAt(s0, 0); err != nil {
			return err
		}
	case "gpt":
		d.encodeProtectiveMBR(s0)
		entries, primary, backup := d.encodeGPT()
		if err := d.writeAt(s0, 0); err != nil {
			return err
		}
		if err := d.writeAt(primary, 1); err != nil {
			return err
		}
		if err := d.writeAt(entries, 2); err != nil {
			return err
		}
		if err := d.writeAt(entries, d.length-1-d.gptEntriesSectors()); err != nil {
			return err
		}
		if err := d.writeAt(backup, d.length-1); err != nil {
			return err
		}
	default:
		return errors.New("no partition table")
	}
	if err := d.f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	return nil
}

func (d *Disk) sortParts() {
	sort.Slice(d.parts, func(i, j int) bool { return d.parts[i].Number < d.parts[j].Number })
}

// fmtBytes renders a byte count the way error messages show positions:
// an exact binary unit when possible, else bytes.
func fmtBytes(b int64) string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b != 0 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b != 0 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", b)
}

func (d *Disk) describe(s span) string {
	return fmt.Sprintf("%s–%s, sectors %d..%d", fmtBytes(s.start*d.sectorSize), fmtBytes((s.end+1)*d.sectorSize), s.start, s.end)
}
