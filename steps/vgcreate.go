package steps

import (
	"fmt"
	"os"

	"github.com/vmdb2-go/vmdb2/partition/lvm"
)

// vgcreateKind creates an LVM volume group on the `physical` tags
// (vmdb2: pvcreate on each, then vgcreate). The PVs' labels and metadata
// are written at the step's teardown, after the LVs' filesystems and
// before the layers under the PVs (LUKS) are finished; no device is
// activated, so there is nothing to deactivate.
var vgcreateKind = &Kind{
	Name:        "vgcreate",
	Summary:     "create an LVM volume group",
	Implemented: true,
	Check: func(s *Step, report reportFunc) {
		if err := lvm.CheckVGName(s.Str("vgcreate")); err != nil {
			report(s.KeyLine("vgcreate"), Error, "vgcreate: %v", err)
		}
	},
	Keys: []Key{
		{Name: "vgcreate", Type: TStr, Required: true},
		{Name: "physical", Type: TList, Default: []string{}},
	},
	Run: func(b *Build, s *Step) error {
		st, err := b.lvm().createVG(&b.State.Tags, b.IDs, s.Str("vgcreate"), s.Strings("physical"), b.lvmTime())
		if err != nil {
			return err
		}
		for i, pv := range st.vg.PVs {
			b.Detail("PV %s on tag %s: %d extents of %d MiB", pv.UUID, st.pvTags[i].Name, pv.PECount, st.vg.ExtentSize>>20)
		}
		return nil
	},
	Teardown: func(b *Build, s *Step) error {
		st := b.lvm()[s.Str("vgcreate")]
		if st == nil || b.failed {
			return nil
		}
		return writeVG(st)
	},
}

// writeVG writes the VG's labels and metadata to each of its PVs.
func writeVG(st *vgState) error {
	for i, tag := range st.pvTags {
		f, err := os.OpenFile(tag.Image, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("writing VG %s to tag %s: %w", st.vg.Name, tag.Name, err)
		}
		err = lvm.WritePV(f, tag.Offset, st.vg, i)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("tag %s: %w", tag.Name, err)
		}
	}
	return nil
}
