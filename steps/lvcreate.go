package steps

import (
	"fmt"
	"io"
	"os"

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
	src, err := os.Open(tag.Image)
	if err != nil {
		return fmt.Errorf("LV %s: %w", tag.Name, err)
	}
	defer src.Close()
	var at int64
	for _, r := range st.vg.Ranges(st.vg.LV(tag.LV.LV)) {
		pv := st.pvTags[r.PV]
		if err := copyRange(pv.Image, pv.Offset+r.Offset, io.NewSectionReader(src, at, r.Size)); err != nil {
			return fmt.Errorf("LV %s onto tag %s: %w", tag.Name, pv.Name, err)
		}
		at += r.Size
	}
	return nil
}

// copyRange writes r to the file at off, leaving holes where r's blocks
// are all zero and the file's are too (a new image stays sparse).
func copyRange(path string, off int64, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	buf, old := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := writeUnlessZero(f, buf[:n], old[:n], off); err != nil {
				f.Close()
				return err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return f.Close()
		}
		if rerr != nil {
			f.Close()
			return rerr
		}
	}
}

func writeUnlessZero(f *os.File, p, old []byte, off int64) error {
	if allZero(p) {
		if n, err := f.ReadAt(old, off); (err == nil || err == io.EOF) && allZero(old[:n]) {
			return nil
		}
	}
	_, err := f.WriteAt(p, off)
	return err
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}
