package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/lvmtool"
	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/partition/lvm"
)

// lvmSpec: two PV partitions, an LV spanning both and one filling the
// rest, an ext4 filesystem on each, one nested in the other.
const lvmSpec = `steps:
- mkimg: "{{ output }}"
  size: 300M
- mklabel: gpt
  device: "{{ output }}"
- mkpart: primary
  device: "{{ output }}"
  start: 1MiB
  end: 100MiB
  tag: pv1
- mkpart: primary
  device: "{{ output }}"
  start: 100MiB
  end: 100%
  tag: pv2
- vgcreate: vg0
  physical: [pv1, pv2]
- lvcreate: vg0
  name: root
  size: 150M
- lvcreate: vg0
  name: srv
  size: fill
- mkfs: ext4
  partition: root
- mkfs: ext4
  partition: srv
- mount: root
- mount: srv
  mount-on: root
  dirname: /srv
- create-dir: /etc
- create-file: /etc/hello
  contents: hello from an LV
- create-file: /srv/data
  contents: on the second LV
- fstab: root
`

// TestLVMBuildAsUser: an ordinary user's build of a VG over two PVs is
// read back by lvm2's tools (pvck, vgck, lvs with each segment where the
// allocation put it), each LV holds an ext4 that e2fsck passes, and GRUB's
// lvm module finds the files in the LV spanning both PVs.
func TestLVMBuildAsUser(t *testing.T) {
	checkTools(t, "lvs", "e2fsck", "debugfs", "grub-fstest", "losetup")
	uid, gid := ordinaryUser(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(lvmSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img", "-v")
	if r.code != 0 {
		t.Fatalf("build failed:\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, `Rounding up size to full physical extent 152.00 MiB`) {
		t.Errorf("no rounding message:\n%s", r.stdout)
	}
	img := filepath.Join(dir, "out.img")
	a := lvmtool.AttachPartitions(t, img)
	devs := a.Devices()
	a.Run("pvck", devs[0])
	a.Run("vgck", "vg0")
	// pv1 is 98 MiB of extents (24), pv2 the rest of 300 MiB (49).
	want := fmt.Sprintf("root vg0 %[1]s(0) 0 24\nroot vg0 %[2]s(0) 24 14\nsrv vg0 %[2]s(14) 0 35", devs[0], devs[1])
	if got := norm(a.Report("vg0")); got != want {
		t.Errorf("lvs:\n%s\nwant:\n%s", got, want)
	}
	for lv, file := range map[string]string{"root": "/etc/hello", "srv": "/data"} {
		fsImg := extractLV(t, img, "vg0", lv)
		if out, err := exec.Command(sbin("e2fsck"), "-fn", fsImg).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn of LV %s: %v\n%s", lv, err, out)
		}
		if out, err := exec.Command(sbin("debugfs"), "-R", "stat "+file, fsImg).CombinedOutput(); err != nil || !strings.Contains(string(out), "Type: regular") {
			t.Errorf("debugfs stat %s in LV %s: %v\n%s", file, lv, err, out)
		}
	}
	grubCat(t, img, "(lvm/vg0-root)/etc/hello", "hello from an LV")
	a.Detach()

	// lvscan (vmdb2 0.28) finds the LVs again in the image given with
	// --image: a new filesystem in the spanning LV, the other LV kept.
	scan := "steps:\n- lvscan: vg0\n  tags: [root, srv]\n- mkfs: ext4\n  partition: root\n- mount: root\n- create-dir: /etc\n- create-file: /etc/again\n  contents: rebuilt\n"
	if err := os.WriteFile(filepath.Join(dir, "scan.vmdb"), []byte(scan), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := buildAs(t, uid, gid, dir, nil, "scan.vmdb", "--image", "out.img"); r.code != 0 {
		t.Fatalf("lvscan build failed:\n%s%s", r.stdout, r.stderr)
	}
	grubCat(t, img, "(lvm/vg0-root)/etc/again", "rebuilt")
	grubCat(t, img, "(lvm/vg0-srv)/data", "on the second LV")
	missing := strings.Replace(scan, "[root, srv]", "[root, nope]", 1)
	os.WriteFile(filepath.Join(dir, "scan.vmdb"), []byte(missing), 0o644)
	if r := buildAs(t, uid, gid, dir, nil, "scan.vmdb", "--image", "out.img"); r.code == 0 || !strings.Contains(r.stderr, "scan.vmdb:3: lvscan: volume group vg0 has no logical volume nope") {
		t.Errorf("lvscan of a missing LV: exit %d\n%s", r.code, r.stderr)
	}

	// An LV mounted without mkfs keeps its filesystem: imported, extended,
	// built again (as kpartx's tags are).
	keep := "steps:\n- lvscan: vg0\n  tags: [srv, root]\n- mount: srv\n- mount: root\n  mount-on: srv\n  dirname: /nested\n- create-file: /more\n  contents: imported and extended\n"
	os.WriteFile(filepath.Join(dir, "scan.vmdb"), []byte(keep), 0o644)
	if r := buildAs(t, uid, gid, dir, nil, "scan.vmdb", "--image", "out.img"); r.code != 0 {
		t.Fatalf("lvscan without mkfs failed:\n%s%s", r.stdout, r.stderr)
	}
	grubCat(t, img, "(lvm/vg0-srv)/data", "on the second LV")
	grubCat(t, img, "(lvm/vg0-srv)/more", "imported and extended")
	grubCat(t, img, "(lvm/vg0-root)/etc/again", "rebuilt")
}

// grubCat checks that GRUB reads want in the image's file.
func grubCat(t *testing.T, img, file, want string) {
	t.Helper()
	out, err := exec.Command("grub-fstest", img, "cat", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("grub-fstest cat %s: %v\n%s", file, err, out)
	}
}

// extractLV copies an LV's segments out of the image into a file.
func extractLV(t *testing.T, img, vgName, lvName string) string {
	t.Helper()
	d, err := partition.SimulateOn(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vg *lvm.VG
	var parts []partition.Partition
	for _, p := range d.Partitions() {
		_, v, err := lvm.ReadPV(io.NewSectionReader(f, p.Offset, p.Size), p.Size)
		if err != nil {
			t.Fatalf("partition %d: %v", p.Number, err)
		}
		vg, parts = v, append(parts, p)
	}
	lv := vg.LV(lvName)
	if vg.Name != vgName || lv == nil {
		t.Fatalf("no LV %s/%s in %+v", vgName, lvName, vg)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), lvName))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for _, r := range vg.Ranges(lv) {
		if _, err := io.Copy(out, io.NewSectionReader(f, parts[r.PV].Offset+r.Offset, r.Size)); err != nil {
			t.Fatal(err)
		}
	}
	return out.Name()
}

func norm(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

// lvmOnLUKSSpec: the usual encrypted layout, a VG on an opened LUKS
// container.
const lvmOnLUKSSpec = `steps:
- mkimg: "{{ output }}"
  size: 200M
- mklabel: gpt
  device: "{{ output }}"
- mkpart: primary
  device: "{{ output }}"
  start: 1MiB
  end: 100%
  tag: cryptpv
- cryptsetup: cryptpv
  password: hunter2
  name: pvcrypt
  options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000
- vgcreate: vg0
  physical: [pvcrypt]
- lvcreate: vg0
  name: root
  size: 60M
- lvcreate: vg0
  name: home
  size: fill
- mkfs: ext4
  partition: root
- mkfs: ext4
  partition: home
- mount: root
- mount: home
  mount-on: root
  dirname: /home
- create-dir: /etc
- create-file: /etc/hello
  contents: hello from LVM on LUKS
- create-file: /home/data
  contents: home
- fstab: root
`

// TestLVMOnLUKSAsUser: a VG on a LUKS cleartext is written before the
// container is encrypted: decrypted by cryptsetup, the cleartext is a PV
// lvm2's tools read, with an ext4 in each LV.
func TestLVMOnLUKSAsUser(t *testing.T) {
	checkTools(t, "lvs", "e2fsck", "debugfs", "grub-fstest", "losetup", "cryptsetup")
	uid, gid := ordinaryUser(t)
	dir := writeWorkDir(t, lvmOnLUKSSpec)
	r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img")
	if r.code != 0 {
		t.Fatalf("build failed:\n%s%s", r.stdout, r.stderr)
	}
	clear := partitionFiles(t, filepath.Join(dir, "out.img"))[0]
	decryptContainer(t, clear, "hunter2")
	a := lvmtool.Attach(t, clear)
	dev := a.Devices()[0]
	a.Run("pvck", dev)
	a.Run("vgck", "vg0")
	// The cleartext is 199 MiB less the 16 MiB LUKS2 header: 45 extents.
	want := fmt.Sprintf("home vg0 %[1]s(15) 0 30\nroot vg0 %[1]s(0) 0 15", dev)
	if got := norm(a.Report("vg0")); got != want {
		t.Errorf("lvs:\n%s\nwant:\n%s", got, want)
	}
	a.Detach()
	grubCat(t, clear, "(lvm/vg0-root)/etc/hello", "hello from LVM on LUKS")
	grubCat(t, clear, "(lvm/vg0-home)/data", "home")
}

// TestLUKSOnSpanningLV: a LUKS container in an LV that spans two PVs is
// encrypted into the LV's scratch file before that is copied to the
// segments, so the LV read back from the image opens and decrypts to the
// filesystem.
func TestLUKSOnSpanningLV(t *testing.T) {
	checkTools(t, "e2fsck", "debugfs", "cryptsetup")
	spec := strings.Split(lvmSpec, "- lvcreate: vg0\n  name: srv")[0] +
		"- cryptsetup: root\n  password: hunter2\n  name: opened\n  options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000\n" +
		"- mkfs: ext4\n  partition: opened\n- mount: opened\n- create-file: /x\n  contents: inner\n"
	dir := writeWorkDir(t, spec)
	if r := buildAs(t, os.Getuid(), os.Getgid(), dir, nil, "spec.vmdb", "--output", "out.img"); r.code != 0 {
		t.Fatalf("build failed:\n%s%s", r.stdout, r.stderr)
	}
	lv := extractLV(t, filepath.Join(dir, "out.img"), "vg0", "root")
	if err := os.Rename(lv, lv+".enc"); err != nil {
		t.Fatal(err)
	}
	decryptContainer(t, lv, "hunter2")
	if out, err := exec.Command(sbin("e2fsck"), "-fn", lv).CombinedOutput(); err != nil {
		t.Errorf("e2fsck of the decrypted LV: %v\n%s", err, out)
	}
	if got := debugfsCat(t, lv, "/x"); got != "inner" {
		t.Errorf("/x: %q", got)
	}
}
