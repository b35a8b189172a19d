package steps

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/partition/lvm"
)

// The LVM model the vgcreate, lvcreate and lvscan steps share with their
// simulation: the VGs made so far, each with the tags of its PVs. A VG is
// written to its PVs (partition/lvm) at the vgcreate step's teardown,
// with its final list of LVs; nothing is activated, so nothing needs
// deactivating (vmdb2's `vgchange -an`).

// creationHost is the host name LVM's metadata records: a fixed name, so
// that images do not depend on the machine that built them.
const creationHost = "vmdb2"

// vgState is one VG of the build.
type vgState struct {
	vg     *lvm.VG
	pvTags []*Tag // in the VG's PV order
}

// lvmModel maps VG names to their state.
type lvmModel map[string]*vgState

// lvmID is an LVM id (32 letters and digits) for purpose, from the seed.
func lvmID(ids IDs, purpose string) string {
	var b [32]byte
	a, c := ids.UUID(purpose+"#0"), ids.UUID(purpose+"#1")
	copy(b[:16], a[:])
	copy(b[16:], c[:])
	return lvm.FormatID(b)
}

// createVG makes VG name on the PV tags (vgcreate's pvcreate and vgcreate).
func (m lvmModel) createVG(tags *Tags, ids IDs, name string, pvNames []string, when int64) (*vgState, error) {
	if err := lvm.CheckVGName(name); err != nil {
		return nil, vgNameError{err}
	}
	if m[name] != nil {
		return nil, vgNameError{fmt.Errorf("A volume group called %s already exists", name)}
	}
	if len(pvNames) == 0 {
		return nil, fmt.Errorf("volume group %s: `physical` lists no tags (give the partitions or opened LUKS devices that are its PVs)", name)
	}
	vg, err := lvm.NewVG(name, lvmID(ids, "lvm-vg:"+sanitize(name)), lvm.DefaultExtentSize)
	if err != nil {
		return nil, err
	}
	vg.CreationHost, vg.CreationTime = creationHost, when
	vg.Description = "Write from vgcreate " + name + " " + strings.Join(pvNames, " ") + "."
	st := &vgState{vg: vg}
	for _, pvName := range pvNames {
		tag, err := m.pvTag(tags, pvName)
		if err != nil {
			return nil, err
		}
		for _, other := range st.pvTags {
			if other == tag {
				return nil, fmt.Errorf("tag %s is listed twice in `physical`", pvName)
			}
		}
		device := tag.LinuxDevice()
		if device == "" {
			device = "[unknown]" // what lvm records for a device it does not know
		}
		if err := vg.AddPV(lvmID(ids, "lvm-pv:"+sanitize(name)+"\x00"+sanitize(pvName)), device, tag.Size); err != nil {
			return nil, fmt.Errorf("tag %s: %w", pvName, err)
		}
		st.pvTags = append(st.pvTags, tag)
	}
	m[name] = st
	return st, nil
}

// pvTag finds a tag that can be a PV: a byte range nothing else uses.
func (m lvmModel) pvTag(tags *Tags, name string) (*Tag, error) {
	tag, err := tags.Get(name)
	switch {
	case err != nil:
		return nil, fmt.Errorf("physical volume: %w", err)
	case tag.Size == 0:
		return nil, fmt.Errorf("tag %s has no partition or device to make a PV of", name)
	case tag.FSType != "":
		return nil, fmt.Errorf("tag %s holds a %s filesystem (mkfs); a PV's tag must not", name, tag.FSType)
	}
	for vgName, st := range m {
		for _, t := range st.pvTags {
			if t == tag {
				return nil, fmt.Errorf("tag %s is already a PV of volume group %s", name, vgName)
			}
		}
	}
	return tag, nil
}

// lvSize reads an lvcreate size: the extents it takes (0 for fill) and,
// when it is not a whole number of extents, lvm's message about rounding.
func lvSize(size string, extentSize int64) (int64, string, error) {
	if lvm.IsFill(size) {
		return 0, "", nil
	}
	n, err := lvm.ParseSize(size)
	if err != nil {
		return 0, "", err
	}
	ext := lvm.Extents(n, extentSize)
	if n%extentSize != 0 {
		return ext, fmt.Sprintf("Rounding up size to full physical extent %.2f MiB", float64(ext*extentSize)/(1<<20)), nil
	}
	return ext, "", nil
}

// createLV allocates LV lvName in VG vgName and makes its tag. The tag's
// range is set when the LV is one segment; a spanning LV's tag gets no
// range here (the caller gives it a scratch file).
func (m lvmModel) createLV(tags *Tags, ids IDs, vgName, lvName, size string, when int64) (*Tag, string, error) {
	st := m[vgName]
	if st == nil {
		return nil, "", fmt.Errorf("Volume group %q not found (create it with a `vgcreate` step first)", vgName)
	}
	ext, note, err := lvSize(size, st.vg.ExtentSize)
	if err != nil {
		return nil, "", err
	}
	if _, err := tags.Get(lvName); err == nil {
		return nil, "", tags.addErr(lvName)
	}
	lv, err := st.vg.CreateLV(lvName, lvmID(ids, "lvm-lv:"+sanitize(vgName)+"\x00"+sanitize(lvName)), ext, when, creationHost)
	if err != nil {
		return nil, "", err
	}
	st.vg.Description = "Write from lvcreate --name " + lvName + " " + vgName + "."
	tag, err := tags.Add(lvName)
	if err != nil {
		return nil, "", err
	}
	st.setLVTag(tag, lv)
	return tag, note, nil
}

// setLVTag fills an LV's tag: its layer, and its range when it is one
// segment.
func (st *vgState) setLVTag(tag *Tag, lv *lvm.LV) {
	ranges := st.vg.Ranges(lv)
	layer := &LVLayer{VG: st.vg.Name, LV: lv.Name, VGUUID: st.vg.UUID, LVUUID: lv.UUID}
	for _, r := range ranges {
		layer.PVs = append(layer.PVs, st.pvTags[r.PV])
	}
	tag.LV = layer
	tag.Size = lv.Extents() * st.vg.ExtentSize
	if len(ranges) == 1 {
		pv := st.pvTags[ranges[0].PV]
		tag.Image, tag.Offset = pv.Image, pv.Offset+ranges[0].Offset
	}
}

// lvmTime is the creation time LVM's metadata records: SOURCE_DATE_EPOCH
// when set.
func (b *Build) lvmTime() int64 {
	if !b.Settings.SourceDateEpoch.IsZero() {
		return b.Settings.SourceDateEpoch.Unix()
	}
	return time.Now().Unix()
}

// lvm is the build's LVM model.
func (b *Build) lvm() lvmModel {
	if b.State.lvm == nil {
		b.State.lvm = lvmModel{}
	}
	return b.State.lvm
}

// simLVM registers the LVM steps' simulations: the same model as the
// build, so the same refusals, before anything runs.
func simLVM(m map[string]func(*sim, *Step)) {
	m["vgcreate"] = func(sm *sim, s *Step) {
		_, err := sm.lvmModel().createVG(&sm.tags, IDs{}, s.Str("vgcreate"), s.Strings("physical"), 0)
		sm.stateErr(s.KeyLine(vgcreateErrKey(err)), err)
	}
	m["lvcreate"] = func(sm *sim, s *Step) {
		tag, _, err := sm.lvmModel().createLV(&sm.tags, IDs{}, s.Str("lvcreate"), s.Str("name"), s.Str("size"), 0)
		if err != nil {
			sm.stateErr(s.Line, err)
			return
		}
		if tag.Image == "" {
			tag.Image = "(scratch file)"
		}
	}
	m["lvscan"] = func(sm *sim, s *Step) {
		if sm.host.Image == "" {
			sm.unsure = true // nothing to read: --dry-run, or the run refuses it
			return
		}
		st, err := sm.lvmModel().scanVG(&sm.tags, sm.host.Image, s.Str("lvscan"))
		if err != nil {
			sm.stateErr(s.KeyLine("lvscan"), err)
			sm.unsure = true
			return
		}
		for _, name := range s.Strings("tags") {
			if tag, err := st.lvTag(&sm.tags, name); err != nil {
				sm.stateErr(s.KeyLine("tags"), err)
			} else if tag.Image == "" {
				tag.Image = "(scratch file)"
			}
		}
	}
}

// vgNameError is a refusal of the VG's name (rather than of its PVs).
type vgNameError struct{ error }

func (e vgNameError) Unwrap() error { return e.error }

// vgcreateErrKey is the key a vgcreate refusal is about.
func vgcreateErrKey(err error) string {
	if errors.As(err, new(vgNameError)) {
		return "vgcreate"
	}
	return "physical"
}

func (sm *sim) lvmModel() lvmModel {
	if sm.lvm == nil {
		sm.lvm = lvmModel{}
	}
	return sm.lvm
}
