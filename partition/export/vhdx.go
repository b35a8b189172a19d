package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// What qemu-img draws at random in a new vhdx, each replaced here by a
// value derived from the build's seed (Options.ID) so that one image
// exports to the same bytes every time (MS-VHDX, sections 2.2 and 2.3):
// both headers' sequence number, FileWriteGuid and DataWriteGuid (each
// header has a CRC-32C of its 4 KiB), the GUID of the log entries qemu-img
// leaves in the log (each with its own CRC-32C; the headers' LogGuid is
// null, so they are never replayed) and the disk's Page83Data identifier in the
// metadata region.
const (
	vhdxHeader1     = 64 << 10
	vhdxHeader2     = 128 << 10
	vhdxRegionTable = 192 << 10
	vhdxHeaderSize  = 4 << 10
)

// The GUIDs, in their on-disk byte order, of the metadata region and of
// the Page83Data metadata item.
var (
	vhdxMetadataRegion = []byte{0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e}
	vhdxPage83Data     = []byte{0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45, 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// setVHDXIDs replaces qemu-img's random identifiers in the vhdx at path.
func setVHDXIDs(path string, id func(purpose string) [16]byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := vhdxHeaders(f, id); err != nil {
		return fmt.Errorf("vhdx headers: %w", err)
	}
	if err := vhdxDiskID(f, id("vhdx-page83")); err != nil {
		return fmt.Errorf("vhdx metadata: %w", err)
	}
	return f.Sync()
}

// vhdxHeaders rewrites both headers; their sequence numbers keep their
// order (the larger one is the current header) from a fixed base.
func vhdxHeaders(f *os.File, id func(string) [16]byte) error {
	var h [2][]byte
	for i, off := range []int64{vhdxHeader1, vhdxHeader2} {
		h[i] = make([]byte, vhdxHeaderSize)
		if _, err := f.ReadAt(h[i], off); err != nil {
			return err
		}
		if string(h[i][:4]) != "head" || !checksumOK(h[i], 4) {
			return errors.New("qemu-img wrote no valid header")
		}
	}
	s1, s2 := binary.LittleEndian.Uint64(h[0][8:]), binary.LittleEndian.Uint64(h[1][8:])
	low := min(s1, s2)
	fileWrite, dataWrite := id("vhdx-file-write"), id("vhdx-data-write")
	for i, seq := range []uint64{s1, s2} {
		binary.LittleEndian.PutUint64(h[i][8:], 1+seq-low)
		copy(h[i][16:32], fileWrite[:])
		copy(h[i][32:48], dataWrite[:])
		setChecksum(h[i], 4)
		if _, err := f.WriteAt(h[i], []int64{vhdxHeader1, vhdxHeader2}[i]); err != nil {
			return err
		}
	}
	return vhdxLogEntries(f, h[0], id("vhdx-log"))
}

// vhdxLogEntries gives the log entries qemu-img left in the log (one
// after the other from its start) a derived GUID.
func vhdxLogEntries(f *os.File, header []byte, guid [16]byte) error {
	logLen := int64(binary.LittleEndian.Uint32(header[68:]))
	logOff := int64(binary.LittleEndian.Uint64(header[72:]))
	head := make([]byte, 16)
	for pos := int64(0); pos+int64(len(head)) <= logLen; {
		if _, err := f.ReadAt(head, logOff+pos); err != nil {
			return err
		}
		entryLen := int64(binary.LittleEndian.Uint32(head[8:]))
		if string(head[:4]) != "loge" || entryLen < 64 || pos+entryLen > logLen {
			return nil // the end of the entries
		}
		entry := make([]byte, entryLen)
		if _, err := f.ReadAt(entry, logOff+pos); err != nil {
			return err
		}
		if !checksumOK(entry, 4) {
			return nil // not an entry: stale bytes
		}
		copy(entry[32:48], guid[:])
		setChecksum(entry, 4)
		if _, err := f.WriteAt(entry, logOff+pos); err != nil {
			return err
		}
		pos += entryLen
	}
	return nil
}

// vhdxDiskID writes the Page83Data item of the metadata region.
func vhdxDiskID(f *os.File, guid [16]byte) error {
	rt := make([]byte, 64<<10)
	if _, err := f.ReadAt(rt, vhdxRegionTable); err != nil {
		return err
	}
	if string(rt[:4]) != "regi" {
		return errors.New("no region table")
	}
	var metaOff int64 = -1
	for i, n := 0, int(binary.LittleEndian.Uint32(rt[8:])); i < n && 16+32*(i+1) <= len(rt); i++ {
		e := rt[16+32*i:]
		if bytes.Equal(e[:16], vhdxMetadataRegion) {
			metaOff = int64(binary.LittleEndian.Uint64(e[16:]))
		}
	}
	if metaOff < 0 {
		return errors.New("no metadata region")
	}
	table := make([]byte, 64<<10)
	if _, err := f.ReadAt(table, metaOff); err != nil {
		return err
	}
	if string(table[:8]) != "metadata" {
		return errors.New("no metadata table")
	}
	for i, n := 0, int(binary.LittleEndian.Uint16(table[10:])); i < n && 32+32*(i+1) <= len(table); i++ {
		e := table[32+32*i:]
		if bytes.Equal(e[:16], vhdxPage83Data) && binary.LittleEndian.Uint32(e[20:]) == 16 {
			_, err := f.WriteAt(guid[:], metaOff+int64(binary.LittleEndian.Uint32(e[16:])))
			return err
		}
	}
	return errors.New("no Page83Data item")
}

// checksumOK checks a CRC-32C stored at b[at:at+4], computed over b with
// that field zero; setChecksum stores it.
func checksumOK(b []byte, at int) bool {
	stored := binary.LittleEndian.Uint32(b[at:])
	setChecksum(b, at)
	ok := binary.LittleEndian.Uint32(b[at:]) == stored
	binary.LittleEndian.PutUint32(b[at:], stored)
	return ok
}

func setChecksum(b []byte, at int) {
	binary.LittleEndian.PutUint32(b[at:], 0)
	binary.LittleEndian.PutUint32(b[at:], crc32.Checksum(b, castagnoli))
}
