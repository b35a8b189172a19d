package grub

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// lvmConfig keeps the host's LVM state out of the test: no metadata
// backups or archives in /etc/lvm, no devices file.
const lvmConfig = "backup { backup = 0 archive = 0 } devices { use_devicesfile = 0 }"

// testVG is the volume group the test makes on its loop device; a name no
// other test uses.
const testVG = "vmdb2grubfstest"

// TestBootOnLVFoundByGRUB checks BootConfig's naming of an LV against
// GRUB's own lvm module: in an image whose /boot is an ext4 LV, the host's
// grub-fstest lists core.img's prefix directory and reads the kernel
// through the drive grub-probe's stand-in names (lvmid/VGUUID/LVUUID).
// The volume group is made with the host's lvm2 on a loop device, and the
// LV is added with vgcfgrestore (lvcreate needs device-mapper).
func TestBootOnLVFoundByGRUB(t *testing.T) {
	testreq.NeedRoot(t, "to attach a loop device for lvm2")
	testreq.NeedTools(t, "losetup", "pvcreate", "vgcreate", "vgcfgbackup", "vgcfgrestore", "vgs", "mke2fs", "grub-fstest")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	loop := run("losetup", "-f", "--show", img)
	attached := true
	detach := func() {
		if attached {
			exec.Command("losetup", "-d", loop).Run()
			attached = false
		}
	}
	t.Cleanup(detach)
	os.Setenv("LVM_SUPPRESS_FD_WARNINGS", "1")
	run("pvcreate", "-q", "--config", lvmConfig, loop)
	run("vgcreate", "-q", "--config", lvmConfig, "-s", "4m", testVG, loop)
	backup := filepath.Join(dir, "vg.cfg")
	run("vgcfgbackup", "-q", "--config", lvmConfig, "-f", backup, testVG)
	const lvUUID = "Zyxwvu-9876-5432-10ab-cdef-9876-543210"
	addLV(t, backup, "boot", lvUUID, 8)
	run("vgcfgrestore", "-q", "--config", lvmConfig, "-f", backup, testVG)
	vgUUID := run("vgs", "--config", lvmConfig, "--noheadings", "-o", "vg_uuid", testVG)
	detach()

	// The LV's extents start at the PV's pe_start (1 MiB by default).
	src := filepath.Join(dir, "boot")
	os.MkdirAll(filepath.Join(src, "grub"), 0o755)
	os.WriteFile(filepath.Join(src, "grub", "grub.cfg"), []byte("# grub.cfg\n"), 0o644)
	os.WriteFile(filepath.Join(src, "vmlinuz-6.1.0-test"), []byte("kernel\n"), 0o644)
	run("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, "-E", fmt.Sprintf("offset=%d", 1<<20), img, "32M")

	l := Layout{
		{UUID: "3f0e8a7c-1234-4cde-9abc-0123456789ab", Type: "ext4", Table: "msdos", Partition: 1},
		{MountPoint: "/boot", UUID: "9d1b2c3a-5e6f-4a7b-8c9d-0e1f2a3b4c5d", Type: "ext4", Table: "msdos", Partition: 1,
			Layers: []Layer{{Kind: LayerLVM, Name: testVG + "-boot", VGUUID: vgUUID, LVUUID: lvUUID}}},
	}
	c, err := BootConfig(l)
	if err != nil {
		t.Fatal(err)
	}
	if want := "(lvmid/" + vgUUID + "/" + lvUUID + ")/grub"; c.Prefix != want || c.Modules[0] != "lvm" {
		t.Fatalf("BootConfig = %+v; want prefix %s and the lvm module", c, want)
	}
	if out := run("grub-fstest", img, "ls", c.Prefix+"/"); !strings.Contains(out, "grub.cfg") {
		t.Errorf("GRUB lists %s as %q; want grub.cfg there", c.Prefix, out)
	}
	drive := strings.TrimSuffix(c.Prefix, "/grub")
	if out := run("grub-fstest", img, "cat", drive+"/vmlinuz-6.1.0-test"); out != "kernel" {
		t.Errorf("GRUB reads the kernel on the LV as %q", out)
	}
}

// addLV adds a linear LV of extents extents at the start of pv0 to the
// VG's text metadata in backup.
func addLV(t *testing.T, backup, name, uuid string, extents int) {
	t.Helper()
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n\t ")
	if !strings.HasSuffix(s, "}") {
		t.Fatalf("unexpected vgcfgbackup output:\n%s", b)
	}
	lv := fmt.Sprintf(`
	logical_volumes {
		%s {
			id = "%s"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1700000000
			creation_host = "vmdb2-test"
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = %d
				type = "striped"
				stripe_count = 1
				stripes = [
					"pv0", 0
				]
			}
		}
	}
}
`, name, uuid, extents)
	if err := os.WriteFile(backup, []byte(s[:len(s)-1]+lv), 0o600); err != nil {
		t.Fatal(err)
	}
}
