package lvm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/lvmtool"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestToolsReadWrittenVG: lvm2's own tools accept the PVs this package
// writes: pvck and vgck find no fault, and lvs shows the LVs' segments
// where the allocation put them (the LV "big" spans both PVs).
func TestToolsReadWrittenVG(t *testing.T) {
	testreq.NeedRoot(t, "to attach loop devices")
	_, err := exec.LookPath("lvs")
	testreq.Need(t, testreq.Tools, err)
	vg := testVG(t)
	dir := t.TempDir()
	var files []string
	for i, pv := range vg.PVs {
		p := filepath.Join(dir, pv.Name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(pv.DevSize); err != nil {
			t.Fatal(err)
		}
		if err := WritePV(f, 0, vg, i); err != nil {
			t.Fatal(err)
		}
		f.Close()
		files = append(files, p)
	}
	a := lvmtool.Attach(t, files...)
	devs := a.Devices()
	a.Run("pvck", devs[0])
	a.Run("vgck", "vg0")
	got := a.Report("vg0")
	want := strings.Join([]string{
		"big vg0 " + devs[0] + "(10) 0 5",
		"big vg0 " + devs[1] + "(0) 5 7",
		"root vg0 " + devs[0] + "(0) 0 10",
	}, "\n")
	if norm(got) != want {
		t.Errorf("lvs:\n%s\nwant:\n%s", got, want)
	}
	if out := a.Run("vgs", "--noheadings", "-o", "vg_name,vg_uuid,pv_count,lv_count,vg_seqno,vg_extent_size", "--units", "b", "vg0"); !strings.Contains(norm(out), "vg0 "+vg.UUID+" 2 2 3 4194304B") {
		t.Errorf("vgs: %s", out)
	}
}

func norm(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}
