package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// On-disk layout constants (see the ext4 disk layout documentation).
const (
	superOffset      = 1024
	superMagic       = 0xEF53
	incompatMetaBG   = 0x10
	incompat64bit    = 0x80
	incompatCsumSeed = 0x2000
	roCompatSparse   = 0x1
	roCompatGdtCsum  = 0x10
	roCompatMetaCsum = 0x400
	compatSparse2    = 0x200
	bgInodeUninit    = 0x1
	goodOldInodeSize = 128
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// super is the part of an ext superblock normalise needs.
type super struct {
	inodesCount    uint32
	blocksCount    uint64
	firstDataBlock uint64
	blockSize      int64
	blocksPerGroup uint32
	inodesPerGroup uint32
	firstIno       uint32
	inodeSize      int
	descSize       int
	compat         uint32
	incompat       uint32
	roCompat       uint32
	uuid           [16]byte
	checksumSeed   uint32
	firstMetaBG    uint32
	backupBGs      [2]uint32
}

func readSuper(f *os.File, offset int64) (*super, error) {
	b := make([]byte, 1024)
	if _, err := f.ReadAt(b, offset+superOffset); err != nil {
		return nil, fmt.Errorf("reading superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(b[0x38:]) != superMagic {
		return nil, errors.New("no ext2/3/4 superblock found")
	}
	s := &super{
		inodesCount:    le.Uint32(b[0x0:]),
		blocksCount:    uint64(le.Uint32(b[0x4:])),
		firstDataBlock: uint64(le.Uint32(b[0x14:])),
		blocksPerGroup: le.Uint32(b[0x20:]),
		inodesPerGroup: le.Uint32(b[0x28:]),
		firstIno:       11,
		inodeSize:      goodOldInodeSize,
		descSize:       32,
		compat:         le.Uint32(b[0x5C:]),
		incompat:       le.Uint32(b[0x60:]),
		roCompat:       le.Uint32(b[0x64:]),
		checksumSeed:   le.Uint32(b[0x270:]),
		firstMetaBG:    le.Uint32(b[0x104:]),
		backupBGs:      [2]uint32{le.Uint32(b[0x24C:]), le.Uint32(b[0x250:])},
	}
	copy(s.uuid[:], b[0x68:0x78])
	logBS := le.Uint32(b[0x18:])
	if logBS > 6 {
		return nil, fmt.Errorf("bad block size (log %d)", logBS)
	}
	s.blockSize = 1024 << logBS
	if le.Uint32(b[0x4C:]) >= 1 { // dynamic revision
		s.firstIno = le.Uint32(b[0x54:])
		s.inodeSize = int(le.Uint16(b[0x58:]))
	}
	if s.incompat&incompat64bit != 0 {
		s.blocksCount |= uint64(le.Uint32(b[0x150:])) << 32
		if ds := int(le.Uint16(b[0xFE:])); ds >= 32 {
			s.descSize = ds
		}
	}
	if s.inodeSize < goodOldInodeSize || s.inodeSize > int(s.blockSize) || s.blocksPerGroup == 0 ||
		s.inodesPerGroup == 0 || s.blocksCount <= s.firstDataBlock {
		return nil, errors.New("implausible superblock")
	}
	return s, nil
}

func (s *super) groups() uint64 {
	return (s.blocksCount - s.firstDataBlock + uint64(s.blocksPerGroup) - 1) / uint64(s.blocksPerGroup)
}

// hasSuper reports whether group g holds a superblock backup.
func (s *super) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if s.compat&compatSparse2 != 0 {
		return g == uint64(s.backupBGs[0]) || g == uint64(s.backupBGs[1])
	}
	if g <= 1 || s.roCompat&roCompatSparse == 0 {
		return true
	}
	if g%2 == 0 {
		return false
	}
	for _, base := range []uint64{3, 5, 7} {
		p := base
		for p < g {
			p *= base
		}
		if p == g {
			return true
		}
	}
	return false
}

// descBlock returns the block holding the i-th block of group descriptors
// (libext2fs's ext2fs_descriptor_block_loc2 for the primary copy).
func (s *super) descBlock(i uint64) uint64 {
	if s.incompat&incompatMetaBG == 0 || i < uint64(s.firstMetaBG) {
		return s.firstDataBlock + 1 + i
	}
	g := i * uint64(s.blockSize) / uint64(s.descSize)
	blk := s.firstDataBlock + g*uint64(s.blocksPerGroup)
	if s.hasSuper(g) {
		blk++
	}
	return blk
}

// groupDesc returns the raw descriptor of group g.
func (s *super) groupDesc(f *os.File, offset int64, g uint64) ([]byte, error) {
	perBlock := uint64(s.blockSize) / uint64(s.descSize)
	pos := int64(s.descBlock(g/perBlock))*s.blockSize + int64(g%perBlock)*int64(s.descSize)
	d := make([]byte, s.descSize)
	if _, err := f.ReadAt(d, offset+pos); err != nil {
		return nil, fmt.Errorf("reading group descriptor %d: %w", g, err)
	}
	return d, nil
}

// normalise rewrites the times of every used inode (the root directory and
// the non-reserved ones) of the filesystem at offset: atime, ctime and
// crtime become t, an mtime later than t becomes t; nanoseconds of the
// rewritten times are zeroed, and the inode checksum is recomputed when
// metadata_csum is on. Only inodes that change are written back.
func normalise(f *os.File, offset int64, s *super, t int64) error {
	n := &normaliser{f: f, offset: offset, s: s, t: t,
		bitmap: make([]byte, s.blockSize),
		table:  make([]byte, int64(s.inodesPerGroup)*int64(s.inodeSize)),
		orig:   make([]byte, s.inodeSize),
	}
	n.csum = s.roCompat&roCompatMetaCsum != 0
	if n.csum {
		if s.incompat&incompatCsumSeed != 0 {
			n.seed = s.checksumSeed
		} else {
			n.seed = ^crc32.Checksum(s.uuid[:], castagnoli)
		}
	}
	uninitValid := s.roCompat&(roCompatGdtCsum|roCompatMetaCsum) != 0
	for g := uint64(0); g < s.groups(); g++ {
		d, err := s.groupDesc(f, offset, g)
		if err != nil {
			return err
		}
		if uninitValid && binary.LittleEndian.Uint16(d[0x12:])&bgInodeUninit != 0 {
			continue
		}
		if err := n.group(g, d); err != nil {
			return err
		}
	}
	return nil
}

// normaliser is normalise's state: the filesystem, the time, the inode
// checksum seed and buffers reused from group to group.
type normaliser struct {
	f                   *os.File
	offset              int64
	s                   *super
	t                   int64
	csum                bool
	seed                uint32
	bitmap, table, orig []byte
}

// group normalises the used inodes of group g, whose descriptor is d.
func (n *normaliser) group(g uint64, d []byte) error {
	le, s := binary.LittleEndian, n.s
	ipg, isz := uint64(s.inodesPerGroup), int64(s.inodeSize)
	bmBlk := uint64(le.Uint32(d[0x4:]))
	itBlk := uint64(le.Uint32(d[0x8:]))
	if s.descSize >= 64 {
		bmBlk |= uint64(le.Uint32(d[0x24:])) << 32
		itBlk |= uint64(le.Uint32(d[0x28:])) << 32
	}
	if bmBlk >= s.blocksCount || itBlk >= s.blocksCount {
		return fmt.Errorf("group %d: bitmap or inode table outside the filesystem", g)
	}
	if _, err := n.f.ReadAt(n.bitmap, n.offset+int64(bmBlk)*s.blockSize); err != nil {
		return fmt.Errorf("reading inode bitmap of group %d: %w", g, err)
	}
	tableRead := false
	for i := uint64(0); i < ipg && i/8 < uint64(len(n.bitmap)); i++ {
		ino := g*ipg + i + 1
		if ino > uint64(s.inodesCount) {
			break
		}
		if n.bitmap[i/8]&(1<<(i%8)) == 0 || (ino != 2 && ino < uint64(s.firstIno)) {
			continue
		}
		if !tableRead {
			if _, err := n.f.ReadAt(n.table, n.offset+int64(itBlk)*s.blockSize); err != nil {
				return fmt.Errorf("reading inode table of group %d: %w", g, err)
			}
			tableRead = true
		}
		b := n.table[int64(i)*isz : int64(i+1)*isz]
		copy(n.orig, b)
		setTimes(b, n.t)
		if n.csum {
			setChecksum(b, n.seed, uint32(ino))
		}
		if !bytes.Equal(n.orig, b) {
			if _, err := n.f.WriteAt(b, n.offset+int64(itBlk)*s.blockSize+int64(i)*isz); err != nil {
				return fmt.Errorf("writing inode %d: %w", ino, err)
			}
		}
	}
	return nil
}

// Inode field offsets.
const (
	iAtime      = 0x08
	iCtime      = 0x0C
	iMtime      = 0x10
	iGen        = 0x64
	iCsumLo     = 0x7C
	iExtraIsize = 0x80
	iCsumHi     = 0x82
	iCtimeExtra = 0x84
	iMtimeExtra = 0x88
	iAtimeExtra = 0x8C
	iCrtime     = 0x90
	iCrtimeExtr = 0x94
)

// hasField reports whether the inode's extra part covers [off, off+4).
func hasField(b []byte, off int) bool {
	if len(b) <= goodOldInodeSize {
		return false
	}
	extra := int(binary.LittleEndian.Uint16(b[iExtraIsize:]))
	return goodOldInodeSize+extra >= off+4 && off+4 <= len(b)
}

// getTime decodes a time field and its optional extra field (epoch bits).
func getTime(b []byte, off, extraOff int) int64 {
	sec := int64(int32(binary.LittleEndian.Uint32(b[off:])))
	if hasField(b, extraOff) {
		sec += int64(binary.LittleEndian.Uint32(b[extraOff:])&3) << 32
	}
	return sec
}

// putTime stores t with zero nanoseconds.
func putTime(b []byte, off, extraOff int, t int64) {
	binary.LittleEndian.PutUint32(b[off:], uint32(int32(t)))
	if hasField(b, extraOff) {
		epoch := uint32((t-int64(int32(t)))>>32) & 3
		binary.LittleEndian.PutUint32(b[extraOff:], epoch)
	}
}

func setTimes(b []byte, t int64) {
	putTime(b, iAtime, iAtimeExtra, t)
	putTime(b, iCtime, iCtimeExtra, t)
	if hasField(b, iCrtime) {
		putTime(b, iCrtime, iCrtimeExtr, t)
	}
	if getTime(b, iMtime, iMtimeExtra) > t {
		putTime(b, iMtime, iMtimeExtra, t)
	}
}

// setChecksum recomputes the metadata_csum inode checksum (crc32c of the
// inode number, generation and inode with its checksum fields zeroed,
// seeded with the filesystem's checksum seed).
func setChecksum(b []byte, seed, ino uint32) {
	le := binary.LittleEndian
	hasHi := len(b) > goodOldInodeSize && le.Uint16(b[iExtraIsize:]) >= 4
	le.PutUint16(b[iCsumLo:], 0)
	if hasHi {
		le.PutUint16(b[iCsumHi:], 0)
	}
	var n [4]byte
	crc := ^seed
	le.PutUint32(n[:], ino)
	crc = crc32.Update(crc, castagnoli, n[:])
	crc = crc32.Update(crc, castagnoli, b[iGen:iGen+4])
	crc = ^crc32.Update(crc, castagnoli, b)
	le.PutUint16(b[iCsumLo:], uint16(crc))
	if hasHi {
		le.PutUint16(b[iCsumHi:], uint16(crc>>16))
	}
}
