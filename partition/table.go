package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"unicode/utf16"
)

// On-disk encoders and decoders for the MBR (msdos) and GPT formats. They are
// written here rather than with go-diskfs because parted's exact layout is
// needed (CHS values from the device geometry, a protective MBR that keeps
// the boot code, attribute bits kept on rewrite, 128 entries, first usable
// LBA 34) and because go-diskfs randomises any GUID left empty.

const (
	mbrTableOffset = 446
	mbrSigOffset   = 0x1b8
	gptEntrySize   = 128
	gptNumEntries  = 128
	gptHeaderSize  = 92
)

var gptSignature = []byte("EFI PART")

// chs encodes sector as the 3-byte cylinder/head/sector triple parted writes,
// saturating (1023, heads-1, sectors) past cylinder 1021 as parted does.
func chs(sector, heads, sectors int64) [3]byte {
	c := sector / (heads * sectors)
	h := (sector / sectors) % heads
	s := sector % sectors
	if c > 1021 {
		c, h, s = 1023, heads-1, sectors-1
	}
	return [3]byte{byte(h), byte(s+1) | byte((c>>8)<<6), byte(c)}
}

// encodeMBREntries writes the four primary entries into sector 0 (bytes
// 446..511), keeping the boot code, the disk signature and bytes 444..445.
func (d *Disk) encodeMBR(s0 []byte) {
	clear(s0[mbrTableOffset:510])
	for _, p := range d.parts {
		e := s0[mbrTableOffset+16*(p.Number-1):]
		if p.Bootable {
			e[0] = 0x80
		}
		if p.hasRawCHS {
			copy(e[1:4], p.rawCHS[0:3])
			copy(e[5:8], p.rawCHS[3:6])
		} else {
			a := chs(p.StartSector, d.heads, d.sectorsPerTrack)
			b := chs(p.StartSector+p.SizeSectors-1, d.heads, d.sectorsPerTrack)
			copy(e[1:4], a[:])
			copy(e[5:8], b[:])
		}
		e[4] = p.MBRType
		binary.LittleEndian.PutUint32(e[8:], uint32(p.StartSector))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.SizeSectors))
	}
	s0[510], s0[511] = 0x55, 0xaa
}

// encodeProtectiveMBR writes parted's protective MBR entry into sector 0,
// keeping the boot code and bytes 440..445.
func (d *Disk) encodeProtectiveMBR(s0 []byte) {
	clear(s0[mbrTableOffset:510])
	e := s0[mbrTableOffset:]
	if d.pmbrBoot {
		e[0] = 0x80
	}
	e[1], e[2], e[3] = 0x00, 0x02, 0x00
	e[4] = mbrGPT
	e[5], e[6], e[7] = 0xff, 0xff, 0xff
	binary.LittleEndian.PutUint32(e[8:], 1)
	size := uint64(d.length - 1)
	if size > 0xffffffff {
		size = 0xffffffff
	}
	binary.LittleEndian.PutUint32(e[12:], uint32(size))
	s0[510], s0[511] = 0x55, 0xaa
}

func (d *Disk) gptEntriesSectors() int64 {
	return ceilDiv(int64(d.gptEntries)*gptEntrySize, d.sectorSize)
}

// encodeGPT returns the entry array and the primary and backup headers.
func (d *Disk) encodeGPT() (entries, primary, backup []byte) {
	entries = make([]byte, d.gptEntriesSectors()*d.sectorSize)
	for _, p := range d.parts {
		e := entries[(p.Number-1)*gptEntrySize:]
		t, u := p.TypeGUID.toDisk(), p.GUID.toDisk()
		copy(e[0:], t[:])
		copy(e[16:], u[:])
		binary.LittleEndian.PutUint64(e[32:], uint64(p.StartSector))
		binary.LittleEndian.PutUint64(e[40:], uint64(p.StartSector+p.SizeSectors-1))
		binary.LittleEndian.PutUint64(e[48:], p.Attributes)
		name := utf16.Encode([]rune(p.Name))
		for i := 0; i < len(name) && i < 36; i++ {
			binary.LittleEndian.PutUint16(e[56+2*i:], name[i])
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries[:d.gptEntries*gptEntrySize])
	header := func(my, alt, entryLBA int64) []byte {
		h := make([]byte, d.sectorSize)
		copy(h, gptSignature)
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], gptHeaderSize)
		binary.LittleEndian.PutUint64(h[24:], uint64(my))
		binary.LittleEndian.PutUint64(h[32:], uint64(alt))
		binary.LittleEndian.PutUint64(h[40:], uint64(d.firstUsable))
		binary.LittleEndian.PutUint64(h[48:], uint64(d.lastUsable))
		g := d.diskGUID.toDisk()
		copy(h[56:], g[:])
		binary.LittleEndian.PutUint64(h[72:], uint64(entryLBA))
		binary.LittleEndian.PutUint32(h[80:], uint32(d.gptEntries))
		binary.LittleEndian.PutUint32(h[84:], gptEntrySize)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:gptHeaderSize]))
		return h
	}
	primary = header(1, d.length-1, 2)
	backup = header(d.length-1, 1, d.length-1-d.gptEntriesSectors())
	return entries, primary, backup
}

// parseGPTHeader checks a header sector and returns its fields.
type gptHeader struct {
	my, alt, firstUsable, lastUsable, entryLBA int64
	diskGUID                                   GUID
	numEntries, entrySize                      uint32
	entriesCRC                                 uint32
}

func parseGPTHeader(h []byte, sectorSize int64) (gptHeader, error) {
	var g gptHeader
	if !bytes.Equal(h[:8], gptSignature) {
		return g, fmt.Errorf("no GPT signature")
	}
	size := binary.LittleEndian.Uint32(h[12:])
	if size < gptHeaderSize || int64(size) > sectorSize {
		return g, fmt.Errorf("GPT header size %d is invalid", size)
	}
	want := binary.LittleEndian.Uint32(h[16:])
	c := make([]byte, size)
	copy(c, h[:size])
	binary.LittleEndian.PutUint32(c[16:], 0)
	if crc32.ChecksumIEEE(c) != want {
		return g, fmt.Errorf("GPT header checksum mismatch")
	}
	g.my = int64(binary.LittleEndian.Uint64(h[24:]))
	g.alt = int64(binary.LittleEndian.Uint64(h[32:]))
	g.firstUsable = int64(binary.LittleEndian.Uint64(h[40:]))
	g.lastUsable = int64(binary.LittleEndian.Uint64(h[48:]))
	g.diskGUID = guidFromDisk(h[56:72])
	g.entryLBA = int64(binary.LittleEndian.Uint64(h[72:]))
	g.numEntries = binary.LittleEndian.Uint32(h[80:])
	g.entrySize = binary.LittleEndian.Uint32(h[84:])
	g.entriesCRC = binary.LittleEndian.Uint32(h[88:])
	if g.entrySize < gptEntrySize || g.entrySize%8 != 0 || g.numEntries == 0 || g.numEntries > 4096 {
		return g, fmt.Errorf("GPT header has an unsupported entry array (%d entries of %d bytes)", g.numEntries, g.entrySize)
	}
	return g, nil
}

func decodeGPTEntry(e []byte, number int) (Partition, bool) {
	t := guidFromDisk(e[0:16])
	if t.IsZero() {
		return Partition{}, false
	}
	p := Partition{Number: number, TypeGUID: t, GUID: guidFromDisk(e[16:32])}
	start := int64(binary.LittleEndian.Uint64(e[32:]))
	end := int64(binary.LittleEndian.Uint64(e[40:]))
	p.StartSector, p.SizeSectors = start, end-start+1
	p.Attributes = binary.LittleEndian.Uint64(e[48:])
	var name []uint16
	for i := 0; i < 36; i++ {
		c := binary.LittleEndian.Uint16(e[56+2*i:])
		if c == 0 {
			break
		}
		name = append(name, c)
	}
	p.Name = string(utf16.Decode(name))
	return p, true
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
