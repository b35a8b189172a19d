// Package lvmtool lets tests read volume groups with the host's lvm2 tools:
// it attaches image files read-only to loop devices (root only), runs lvm
// commands with a private configuration that sees only those devices and
// keeps no cache or backups, and detaches the devices when the test ends.
package lvmtool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Attached is a set of read-only loop devices lvm may scan.
type Attached struct {
	t       testing.TB
	devices []string
	env     []string
}

// Attach attaches each file read-only (partitions scanned with -P) and
// prepares a private lvm configuration for them. The devices are
// detached at the test's cleanup, even when it fails.
func Attach(t testing.TB, files ...string) *Attached {
	t.Helper()
	a := &Attached{t: t}
	for _, f := range files {
		out, err := exec.Command("losetup", "-r", "-P", "-f", "--show", f).CombinedOutput()
		if err != nil {
			t.Fatalf("losetup -r -P %s: %v\n%s", f, err, out)
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() {
			if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
				t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
			}
		})
		a.devices = append(a.devices, dev)
	}
	dir := t.TempDir()
	var accept []string
	for _, d := range a.devices {
		// The device and its partitions (loop0p1, ...).
		accept = append(accept, fmt.Sprintf(`"a|^%s(p[0-9]+)?$|"`, d))
	}
	conf := fmt.Sprintf(`devices { filter=[%s,"r|.*|"] global_filter=[%s,"r|.*|"] obtain_device_list_from_udev=0 use_devicesfile=0 scan=["/dev"] }
global { locking_dir=%q }
activation { udev_sync=0 udev_rules=0 monitoring=0 }
backup { backup=0 archive=0 }
`, strings.Join(accept, ","), strings.Join(accept, ","), filepath.Join(dir, "lock"))
	if err := os.WriteFile(filepath.Join(dir, "lvm.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	a.env = append(os.Environ(), "LVM_SYSTEM_DIR="+dir, "LVM_SUPPRESS_FD_WARNINGS=1")
	return a
}

// Devices are the loop devices, one per file given to Attach.
func (a *Attached) Devices() []string { return a.devices }

// Run runs an lvm command (pvs, vgs, lvs, vgck, pvck, ...) and returns its
// standard output; a failure or a warning on its standard error fails the
// test.
func (a *Attached) Run(args ...string) string {
	a.t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = a.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		a.t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "WARNING") || strings.Contains(line, "rror") || strings.Contains(line, "Checksum") {
			a.t.Errorf("%s: %s", strings.Join(args, " "), line)
		}
	}
	return string(out)
}

// Report runs lvs with the segment columns tests compare: one line per
// segment "LV VG DEVICE(START) SEGSTART SEGSIZE" (extents).
func (a *Attached) Report(vg string) string {
	a.t.Helper()
	return a.Run("lvs", "--noheadings", "--separator", " ", "-o", "lv_name,vg_name,devices,seg_start_pe,seg_size_pe", vg)
}
