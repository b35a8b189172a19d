package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The on-disk layout lvm2's pvcreate gives a PV with its defaults
// (lib/format_text/layout.h, lib/label/label.h).
const (
	SectorSize = 512
	labelID    = "LABELONE"
	labelType  = "LVM2 001"
	// labelSector is where pvcreate puts the label; readers look in the
	// first four sectors.
	labelSector   = 1
	labelScan     = 4
	pvHeaderOff   = 32 // the PV header's offset in the label sector
	pvExtVersion  = 2
	pvExtInUse    = 1 // PV_EXT_USED: the PV belongs to a VG
	mdaMagic      = " LVM2 x[5A%r0N*>"
	mdaVersion    = 1
	mdaHeaderSize = 512
	// MDAStart is the metadata area's offset: pvcreate puts it after the
	// label's 4 KiB.
	MDAStart = 4096
	// PEStart is where the first extent starts (pvcreate's default data
	// alignment); the metadata area fills the space before it.
	PEStart = 1 << 20
	mdaSize = PEStart - MDAStart
	// DefaultExtentSize is vgcreate's default extent size.
	DefaultExtentSize = 4 << 20
	// uuidLen is the length of an LVM id without its dashes.
	uuidLen  = 32
	crcStart = 0xf597a6cf
)

var le = binary.LittleEndian

// checksum is lvm2's CRC: CRC-32 (IEEE) from initial value 0xf597a6cf
// without the final inversion.
func checksum(data []byte) uint32 {
	return ^crc32.Update(^uint32(crcStart), crc32.IEEETable, data)
}

// headerArea returns the first PEStart bytes of PV pv of vg: the label,
// PV header, metadata area header and metadata text, everything else
// zero (as pvcreate wipes the start of the device).
func headerArea(vg *VG, pv *PV) ([]byte, error) {
	text := append(vg.Text(), 0)
	if len(text) > mdaSize-mdaHeaderSize {
		return nil, fmt.Errorf("the metadata of VG %s is %d bytes, more than the %d its metadata area holds", vg.Name, len(text), mdaSize-mdaHeaderSize)
	}
	buf := make([]byte, PEStart)
	putLabel(buf[labelSector*SectorSize:(labelSector+1)*SectorSize], pv)
	mda := buf[MDAStart:]
	copy(mda[mdaHeaderSize:], text)
	putMDAHeader(mda[:mdaHeaderSize], uint64(mdaHeaderSize), text)
	return buf, nil
}

// putLabel fills the label sector: label header, PV header with one data
// area and one metadata area, and the PV header extension.
func putLabel(sec []byte, pv *PV) {
	copy(sec[0:8], labelID)
	le.PutUint64(sec[8:], labelSector)
	le.PutUint32(sec[20:], pvHeaderOff)
	copy(sec[24:32], labelType)
	h := sec[pvHeaderOff:]
	copy(h[0:uuidLen], undash(pv.UUID))
	le.PutUint64(h[32:], uint64(pv.DevSize))
	areas := h[40:]
	le.PutUint64(areas[0:], PEStart) // data area: offset, size 0 = to the end
	// areas[16:32] ends the data areas; then the metadata area.
	le.PutUint64(areas[32:], MDAStart)
	le.PutUint64(areas[40:], mdaSize)
	// areas[48:64] ends the metadata areas; then the extension.
	ext := areas[64:]
	le.PutUint32(ext[0:], pvExtVersion)
	le.PutUint32(ext[4:], pvExtInUse)
	// ext[8:24] ends the (empty) bootloader area list.
	le.PutUint32(sec[16:], checksum(sec[20:]))
}

// putMDAHeader fills the metadata area header with the location of the
// metadata text (at off in the area).
func putMDAHeader(h []byte, off uint64, text []byte) {
	copy(h[4:20], mdaMagic)
	le.PutUint32(h[20:], mdaVersion)
	le.PutUint64(h[24:], MDAStart)
	le.PutUint64(h[32:], mdaSize)
	loc := h[40:]
	le.PutUint64(loc[0:], off)
	le.PutUint64(loc[8:], uint64(len(text)))
	le.PutUint32(loc[16:], checksum(text))
	le.PutUint32(h[0:], checksum(h[4:]))
}

// WritePV writes the label and metadata of PV i of vg into w at offset
// base (the PV's first byte).
func WritePV(w io.WriterAt, base int64, vg *VG, i int) error {
	if i < 0 || i >= len(vg.PVs) {
		return fmt.Errorf("VG %s has no PV %d", vg.Name, i)
	}
	buf, err := headerArea(vg, &vg.PVs[i])
	if err != nil {
		return err
	}
	if _, err := w.WriteAt(buf, base); err != nil {
		return fmt.Errorf("writing the LVM metadata of %s: %w", vg.PVs[i].Device, err)
	}
	return nil
}

// ErrNoLabel is returned by ReadPV for a range without an LVM2 label.
var ErrNoLabel = errors.New("no LVM2 label (LABELONE) in the first sectors")
