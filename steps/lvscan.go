package steps

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/partition/lvm"
)

// lvscanKind (vmdb2 0.28+) makes tags of the LVs of a VG already on the
// image given with --image: the VG is read from the image's partitions
// (their LVM labels and metadata), and each LV listed in `tags` becomes a
// tag of its name. An LV spanning PVs is read into a scratch file and
// written back at the step's teardown.
var lvscanKind = &Kind{
	Name:        "lvscan",
	Summary:     "make tags of the LVs of a VG on an existing image (--image)",
	Implemented: true,
	Check: func(s *Step, report reportFunc) {
		if err := lvm.CheckVGName(s.Str("lvscan")); err != nil {
			report(s.KeyLine("lvscan"), Error, "lvscan: %v", err)
		}
	},
	Keys: []Key{
		{Name: "lvscan", Type: TStr, Required: true},
		{Name: "tags", Type: TList, Default: []string{}},
	},
	Run: func(b *Build, s *Step) error {
		path := b.Settings.Image
		if path == "" {
			return fmt.Errorf("lvscan reads volume group %s from the image given with --image; give --image", s.Str("lvscan"))
		}
		st, err := b.lvm().scanVG(&b.State.Tags, path, s.Str("lvscan"))
		if err != nil {
			return err
		}
		for _, name := range s.Strings("tags") {
			tag, err := st.lvTag(&b.State.Tags, name)
			if err != nil {
				return err
			}
			if tag.Image == "" {
				if err := b.readSpanningLV(st, tag); err != nil {
					return err
				}
			}
			b.Detail("LV %s/%s (%s) is tag %s", st.vg.Name, name, sizeText(tag.Size), name)
		}
		return nil
	},
	Teardown: func(b *Build, s *Step) error {
		st := b.lvm()[s.Str("lvscan")]
		if st == nil || b.failed {
			return nil
		}
		for _, name := range s.Strings("tags") {
			if tag, err := b.State.Tags.Get(name); err == nil && tag.LV != nil && len(tag.LV.PVs) > 1 {
				if err := copyToSegments(st, tag); err != nil {
					return err
				}
			}
		}
		return nil
	},
}

// lvTag makes the tag of an existing LV.
func (st *vgState) lvTag(tags *Tags, name string) (*Tag, error) {
	lv := st.vg.LV(name)
	if lv == nil {
		return nil, fmt.Errorf("volume group %s has no logical volume %s", st.vg.Name, name)
	}
	tag, err := tags.Add(name)
	if err != nil {
		return nil, err
	}
	st.setLVTag(tag, lv)
	tag.Reused = true
	return tag, nil
}

// readSpanningLV gives a spanning LV's tag a scratch file with its data.
func (b *Build) readSpanningLV(st *vgState, tag *Tag) error {
	p, err := b.scratchFile("lv-"+st.vg.Name+"-"+tag.Name, tag.Size)
	if err != nil {
		return err
	}
	tag.Image = p
	if err := lvm.Gather(p, st.places(tag)); err != nil {
		return fmt.Errorf("reading LV %s: %w", tag.Name, err)
	}
	return nil
}

// scanVG reads VG vgName from the partitions of the image at path: the
// newest metadata (highest seqno) of the PVs that name it.
func (m lvmModel) scanVG(tags *Tags, path, vgName string) (*vgState, error) {
	if m[vgName] != nil {
		return nil, fmt.Errorf("A volume group called %s already exists", vgName)
	}
	d, err := partition.SimulateOn(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var best *lvm.VG
	found := map[string]partition.Partition{} // PV UUID → partition
	for _, p := range d.Partitions() {
		l, vg, err := lvm.ReadPV(io.NewSectionReader(f, p.Offset, p.Size), p.Size)
		if errors.Is(err, lvm.ErrNoLabel) || vg != nil && vg.Name != vgName {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("partition %d of %s: %w", p.Number, path, err)
		}
		found[l.UUID] = p
		if best == nil || vg.Seqno > best.Seqno {
			best = vg
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no partition of %s is a PV of volume group %s", path, vgName)
	}
	st := &vgState{vg: best}
	for i, pv := range best.PVs {
		p, ok := found[pv.UUID]
		if !ok {
			return nil, fmt.Errorf("volume group %s: PV %s (%s) is not a partition of %s", vgName, pv.UUID, pv.Name, path)
		}
		if err := best.CheckPV(i, p.Size); err != nil {
			return nil, fmt.Errorf("volume group %s on partition %d of %s: %w", vgName, p.Number, path, err)
		}
		st.pvTags = append(st.pvTags, partitionTag(tags, path, p))
	}
	m[vgName] = st
	return st, nil
}

// partitionTag is the tag of a partition, or an untabled one naming it.
func partitionTag(tags *Tags, path string, p partition.Partition) *Tag {
	for _, t := range tags.All() {
		if t.Image == path && t.Offset == p.Offset && t.PartNumber == p.Number {
			return t
		}
	}
	return &Tag{Name: fmt.Sprintf("partition %d", p.Number), Image: path, PartNumber: p.Number, Offset: p.Offset, Size: p.Size}
}
