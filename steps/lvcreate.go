package steps

import (
	"fmt"

	"github.com/vmdb2-go/vmdb2/partition/lvm"
)

// lvcreateKind creates an LVM logical volume in a VG a vgcreate step made;
// the LV becomes tag `name`. An LV in one segment is a byte range of its
// PV's tag; one spanning PVs is built in a scratch file that is copied to
// its segments at this step's teardown.
var lvcreateKind = &Kind{
	Name:        "lvcreate",
	Summary:     "create an LVM logical volume",
	Implemented: true,
	Check:       checkLvcreate,
	Keys: []Key{
		{Name: "lvcreate", Type: TStr, Required: true},
		{Name: "name", Type: TStr, Required: true},
		{Name: "size", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		vgName, name := s.Str("lvcreate"), s.Str("name")
		tag, note, err := b.lvm().createLV(&b.State.Tags, b.IDs, vgName, name, s.Str("size"), b.lvmTime())
		if err != nil {
			return err
		}
		if note != "" {
			b.Progress("%s", note)
		}
		if tag.Image == "" {
			if tag.Image, err = b.scratchFile("lv-"+vgName+"-"+name, tag.Size); err != nil {
				return err
			}
		}
		b.Progress("Logical volume %q created (%s, tag %s).", name, sizeText(tag.Size), name)
		return nil
	},
	Teardown: func(b *Build, s *Step) error {
		st := b.lvm()[s.Str("lvcreate")]
		tag, err := b.State.Tags.Get(s.Str("name"))
		if st == nil || err != nil || tag.LV == nil || len(tag.LV.PVs) < 2 || b.failed {
			return nil
		}
		return copyToSegments(st, tag)
	},
}

func checkLvcreate(s *Step, report reportFunc) {
	if err := lvm.CheckVGName(s.Str("lvcreate")); err != nil {
		report(s.KeyLine("lvcreate"), Error, "lvcreate: %v", err)
	}
	if err := lvm.CheckLVName(s.Str("name")); err != nil {
		report(s.KeyLine("name"), Error, "lvcreate: %v", err)
	}
	if _, _, err := lvSize(s.Str("size"), lvm.DefaultExtentSize); err != nil {
		report(s.KeyLine("size"), Error, "lvcreate: %v", err)
	}
}

// copyToSegments writes a spanning LV's scratch file to its segments.
func copyToSegments(st *vgState, tag *Tag) error {
	if err := lvm.Scatter(tag.Image, st.places(tag)); err != nil {
		return fmt.Errorf("LV %s onto its PVs: %w", tag.Name, err)
	}
	return nil
}

// places is where a spanning LV's segments are in their PVs' files.
func (st *vgState) places(tag *Tag) []lvm.Place {
	var out []lvm.Place
	for _, r := range st.vg.Ranges(st.vg.LV(tag.LV.LV)) {
		pv := st.pvTags[r.PV]
		out = append(out, lvm.Place{Path: pv.Image, Offset: pv.Offset + r.Offset, Size: r.Size})
	}
	return out
}
