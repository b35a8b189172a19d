package lvm

import (
	"fmt"
	"strings"
)

// VG is a volume group: its PVs, in the order vgcreate was given them, and
// its LVs, in creation order.
type VG struct {
	Name string
	UUID string // dashed form
	// Seqno counts the metadata's commits: 1 after vgcreate, one more per
	// lvcreate.
	Seqno      int
	ExtentSize int64 // bytes
	PVs        []PV
	LVs        []LV
	// CreationHost and CreationTime are written in the metadata's
	// trailer (the last commit's host and time).
	CreationHost string
	CreationTime int64
	// Description is the trailer's description (lvm: "Write from <command>.").
	Description string
}

// PV is one physical volume of a VG.
type PV struct {
	Name   string // pv0, pv1, ... in the metadata
	UUID   string
	Device string // the device path as the metadata records it (a hint)
	// DevSize is the PV's size in bytes; PECount the extents after PEStart.
	DevSize int64
	PEStart int64
	PECount int64
}

// LV is a logical volume.
type LV struct {
	Name         string
	UUID         string
	CreationTime int64
	CreationHost string
	Segments     []Segment
}

// Segment is a linear run of an LV's extents on one PV.
type Segment struct {
	StartExtent int64 // in the LV
	ExtentCount int64
	PV          string // the PV's name (pv0, ...)
	PVExtent    int64  // the first extent on the PV
}

// Extents is the LV's size in extents.
func (lv *LV) Extents() int64 {
	var n int64
	for _, s := range lv.Segments {
		n += s.ExtentCount
	}
	return n
}

// NewVG starts a VG with no PVs.
func NewVG(name, uuid string, extentSize int64) (*VG, error) {
	if err := CheckVGName(name); err != nil {
		return nil, err
	}
	if extentSize <= 0 || extentSize%SectorSize != 0 {
		return nil, fmt.Errorf("extent size %d is not a positive multiple of %d bytes", extentSize, SectorSize)
	}
	return &VG{Name: name, UUID: uuid, Seqno: 1, ExtentSize: extentSize}, nil
}

// AddPV adds a PV of size bytes at the end of the VG.
func (vg *VG) AddPV(uuid, device string, size int64) error {
	size -= size % SectorSize
	count := (size - PEStart) / vg.ExtentSize
	if size < PEStart || count < 1 {
		return fmt.Errorf("%s is %d bytes, too small for a PV of VG %s (LVM needs %d bytes: 1 MiB of metadata and one %d MiB extent)",
			device, size, vg.Name, PEStart+vg.ExtentSize, vg.ExtentSize>>20)
	}
	vg.PVs = append(vg.PVs, PV{Name: fmt.Sprintf("pv%d", len(vg.PVs)), UUID: uuid, Device: device,
		DevSize: size, PEStart: PEStart, PECount: count})
	return nil
}

// PV returns the PV of a name in the metadata.
func (vg *VG) PV(name string) *PV {
	for i := range vg.PVs {
		if vg.PVs[i].Name == name {
			return &vg.PVs[i]
		}
	}
	return nil
}

// LV returns the LV of a name, or nil.
func (vg *VG) LV(name string) *LV {
	for i := range vg.LVs {
		if vg.LVs[i].Name == name {
			return &vg.LVs[i]
		}
	}
	return nil
}

// used marks which extents of each PV the LVs take.
func (vg *VG) used() map[string][]bool {
	m := map[string][]bool{}
	for _, pv := range vg.PVs {
		m[pv.Name] = make([]bool, pv.PECount)
	}
	for _, lv := range vg.LVs {
		for _, s := range lv.Segments {
			u := m[s.PV]
			for e := s.PVExtent; e < s.PVExtent+s.ExtentCount && e < int64(len(u)); e++ {
				u[e] = true
			}
		}
	}
	return m
}

// FreeExtents is the number of extents no LV uses.
func (vg *VG) FreeExtents() int64 {
	var n int64
	for _, u := range vg.used() {
		for _, x := range u {
			if !x {
				n++
			}
		}
	}
	return n
}

// CreateLV allocates extents for a new LV linearly, in PV order (lvm's
// default "normal" policy on an unfragmented VG), and commits it: Seqno
// goes up by one. extents 0 means all free extents (100%FREE).
func (vg *VG) CreateLV(name, uuid string, extents int64, time int64, host string) (*LV, error) {
	if err := CheckLVName(name); err != nil {
		return nil, err
	}
	if vg.LV(name) != nil {
		return nil, fmt.Errorf("Logical Volume %q already exists in volume group %q", name, vg.Name)
	}
	free := vg.FreeExtents()
	if extents == 0 {
		extents = free
	}
	if extents == 0 || extents > free {
		return nil, fmt.Errorf("Volume group %q has insufficient free space (%d extents): %d required", vg.Name, free, extents)
	}
	lv := LV{Name: name, UUID: uuid, CreationTime: time, CreationHost: host}
	used := vg.used()
	var at int64
	for _, pv := range vg.PVs {
		u := used[pv.Name]
		for e := int64(0); e < pv.PECount && at < extents; e++ {
			if u[e] {
				continue
			}
			n := len(lv.Segments)
			if n > 0 && lv.Segments[n-1].PV == pv.Name && lv.Segments[n-1].PVExtent+lv.Segments[n-1].ExtentCount == e {
				lv.Segments[n-1].ExtentCount++
			} else {
				lv.Segments = append(lv.Segments, Segment{StartExtent: at, ExtentCount: 1, PV: pv.Name, PVExtent: e})
			}
			at++
		}
	}
	vg.LVs = append(vg.LVs, lv)
	vg.Seqno++
	return &vg.LVs[len(vg.LVs)-1], nil
}

// Range is a byte range of a PV.
type Range struct {
	PV     int // index in VG.PVs
	Offset int64
	Size   int64
}

// Ranges are the byte ranges of the LV's segments on its PVs (offsets from
// each PV's start), in LV order.
func (vg *VG) Ranges(lv *LV) []Range {
	var out []Range
	for _, s := range lv.Segments {
		for i := range vg.PVs {
			if vg.PVs[i].Name == s.PV {
				pv := &vg.PVs[i]
				out = append(out, Range{PV: i, Offset: pv.PEStart + s.PVExtent*vg.ExtentSize, Size: s.ExtentCount * vg.ExtentSize})
			}
		}
	}
	return out
}

// idChars are the characters of LVM ids (lvm2 lib/uuid: letters and
// digits).
const idChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// FormatID makes an LVM id of 32 letters and digits from 32 random bytes,
// as lvm does, and dashes it (6-4-4-4-4-4-6).
func FormatID(b [32]byte) string {
	var raw [uuidLen]byte
	for i, x := range b {
		raw[i] = idChars[int(x)%len(idChars)]
	}
	return dash(string(raw[:]))
}

var dashGroups = []int{6, 4, 4, 4, 4, 4, 6}

func dash(s string) string {
	var parts []string
	for _, n := range dashGroups {
		if len(s) < n {
			return s
		}
		parts, s = append(parts, s[:n]), s[n:]
	}
	return strings.Join(parts, "-")
}

func undash(s string) string { return strings.ReplaceAll(s, "-", "") }
