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

	"github.com/vmdb2-go/vmdb2/partition"
)

// Attached is a set of read-only loop devices lvm may scan.
type Attached struct {
	t        testing.TB
	devices  []string
	env      []string
	detached map[string]bool
}

// Attach attaches each file read-only and prepares a private lvm
// configuration for them. The devices are detached at the test's cleanup,
// even when it fails.
func Attach(t testing.TB, files ...string) *Attached {
	t.Helper()
	a := &Attached{t: t}
	for _, f := range files {
		a.attach(f)
	}
	a.configure()
	return a
}

// AttachPartitions attaches each partition of the image read-only, as a
// loop device of its byte range (partition devices of a loop device need
// udev, which test machines may lack).
func AttachPartitions(t testing.TB, img string) *Attached {
	t.Helper()
	d, err := partition.SimulateOn(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a := &Attached{t: t}
	for _, p := range d.Partitions() {
		a.attach(img, "--offset", fmt.Sprint(p.Offset), "--sizelimit", fmt.Sprint(p.Size))
	}
	a.configure()
	return a
}

func (a *Attached) attach(file string, opts ...string) {
	a.t.Helper()
	args := append(append([]string{"-r", "-f", "--show"}, opts...), file)
	out, err := exec.Command("losetup", args...).CombinedOutput()
	if err != nil {
		a.t.Fatalf("losetup %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	dev := strings.TrimSpace(string(out))
	a.t.Cleanup(func() { a.detach(dev) })
	a.devices = append(a.devices, dev)
}

// Detach detaches the devices now (before the test's cleanup).
func (a *Attached) Detach() {
	for _, dev := range a.devices {
		a.detach(dev)
	}
}

func (a *Attached) detach(dev string) {
	if a.detached[dev] {
		return
	}
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		a.t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
	}
	if a.detached == nil {
		a.detached = map[string]bool{}
	}
	a.detached[dev] = true
}

// configure writes the private configuration: lvm sees only a.devices.
func (a *Attached) configure() {
	t := a.t
	dir := t.TempDir()
	var accept []string
	for _, d := range a.devices {
		accept = append(accept, fmt.Sprintf(`"a|^%s$|"`, d))
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
}

// Devices are the loop devices, one per file or partition, in order.
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
