package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/canary"
)

// The image an earlier build made: an msdos table, an ext4 root (1 MiB to
// 40 MiB) and a vfat ESP nested at /boot/efi.
const (
	reuseRootOffset = 1 << 20
	reuseEFIOffset  = 40 << 20
	reuseFirstSpec  = `steps:
- mkimg: "{{ output }}"
  size: 64M
- mklabel: msdos
  device: "{{ output }}"
- mkpart: primary
  device: "{{ output }}"
  start: 1MiB
  end: 40MiB
  tag: root
- mkpart: primary
  device: "{{ output }}"
  start: 40MiB
  end: 100%
  tag: efi
- mkfs: ext4
  partition: root
  label: myroot
- mkfs: vfat
  partition: efi
  label: EFIPART
- mount: root
- mount: efi
  mount-on: root
  dirname: /boot/efi
- create-dir: /etc
- create-file: /etc/old
  contents: old file
- create-dir: /boot/efi/EFI
- create-file: /boot/efi/EFI/old.txt
  contents: old efi
- fstab: root
`
	// reuseSecondSpec changes that image's content (vmdb2 0.28's kpartx
	// tags, mount without mkfs) through --image.
	reuseSecondSpec = `steps:
- kpartx: "{{ image }}"
  tags: [root, efi]
- mount: root
- mount: efi
  mount-on: root
  dirname: /boot/efi
- create-file: /etc/new
  contents: new file
- create-file: /boot/efi/EFI/new.txt
  contents: new efi
`
)

// firstImage builds reuseFirstSpec as root into dir/first.img, then gives
// its root filesystem what the file steps cannot make: a device node, an
// owner, a mode, a symbolic link and an extended attribute, plus extra
// (debugfs -w commands).
func firstImage(t *testing.T, extra ...string) (dir, img string) {
	t.Helper()
	dir = t.TempDir()
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	os.WriteFile(filepath.Join(dir, "first.vmdb"), []byte(reuseFirstSpec), 0o644)
	os.WriteFile(filepath.Join(dir, "second.vmdb"), []byte(reuseSecondSpec), 0o644)
	if r := buildAs(t, os.Getuid(), os.Getgid(), dir, nil, "first.vmdb", "--output", "first.img"); r.code != 0 {
		t.Fatalf("first build: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	img = filepath.Join(dir, "first.img")
	cmds := append([]string{"cd /etc", "mknod null c 1 3", "symlink link old", "sif old uid 1000", "sif old gid 1001",
		"sif old mode 0100640", "ea_set old user.note kept", "cd /"}, extra...)
	cmd := exec.Command(sbin("debugfs"), "-w", "-f", "-", fmt.Sprintf("%s?offset=%d", img, reuseRootOffset))
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debugfs -w: %v\n%s", err, out)
	}
	return dir, img
}

// reuseBuild copies img to dir/out.img and builds the second spec on it
// as uid:gid; it returns the result and the image.
func reuseBuild(t *testing.T, uid, gid int, dir, img string) (result, string) {
	t.Helper()
	out := filepath.Join(dir, "out.img")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return buildAs(t, uid, gid, dir, nil, "second.vmdb", "--image", "out.img"), out
}

// identity is what fstab and GRUB know a filesystem by.
func identity(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command(sbin("dumpe2fs"), "-h", fmt.Sprintf("%s?offset=%d", img, reuseRootOffset)).Output()
	if err != nil {
		t.Fatalf("dumpe2fs: %v", err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, k := range []string{"Filesystem UUID:", "Filesystem volume name:", "Filesystem features:", "Directory Hash Seed:", "Inode size:", "Block size:"} {
			if strings.HasPrefix(l, k) {
				keep = append(keep, l)
			}
		}
	}
	info, err := exec.Command("minfo", "-i", fmt.Sprintf("%s@@%d", img, reuseEFIOffset), "::").Output()
	if err != nil {
		t.Fatalf("minfo: %v", err)
	}
	for _, l := range strings.Split(string(info), "\n") {
		if strings.Contains(l, "serial number") || strings.Contains(l, "disk label") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "\n")
}

// checkReused checks the image after the second build: old and new files,
// what the first image's root had, the same identities, clean fscks.
func checkReused(t *testing.T, img, wantIdentity string) {
	t.Helper()
	root := fmt.Sprintf("%s?offset=%d", img, reuseRootOffset)
	efi := fmt.Sprintf("%s@@%d", img, reuseEFIOffset)
	for file, want := range map[string]string{"/etc/old": "old file", "/etc/new": "new file"} {
		if got := debugfs(t, img, reuseRootOffset, "cat "+file); got != want {
			t.Errorf("%s holds %q, want %q", file, got, want)
		}
	}
	stat := debugfs(t, img, reuseRootOffset, "stat /etc/old")
	if m := statRE.FindStringSubmatch(stat); m == nil || m[1] != "0640" || m[2] != "1000" || m[3] != "1001" {
		t.Errorf("/etc/old lost its mode or owner: %v\n%s", m, stat)
	}
	if !strings.Contains(stat, "user.note (4) = \"kept\"") {
		t.Errorf("/etc/old lost its attribute:\n%s", stat)
	}
	if s := debugfs(t, img, reuseRootOffset, "stat /etc/link"); !strings.Contains(s, "Type: symlink") || !strings.Contains(s, `Fast link dest: "old"`) {
		t.Errorf("/etc/link:\n%s", s)
	}
	if s := debugfs(t, img, reuseRootOffset, "stat /etc/null"); !strings.Contains(s, "Type: character special") || !strings.Contains(s, "Device major/minor number: 01:03") {
		t.Errorf("/etc/null:\n%s", s)
	}
	if s := debugfs(t, img, reuseRootOffset, "cat /etc/fstab"); !strings.Contains(s, " / ext4 ") || !strings.Contains(s, " /boot/efi vfat ") {
		t.Errorf("fstab lost:\n%s", s)
	}
	for file, want := range map[string]string{"::/EFI/old.txt": "old efi", "::/EFI/new.txt": "new efi"} {
		out, err := exec.Command("mtype", "-i", efi, file).Output()
		if err != nil || string(out) != want {
			t.Errorf("mtype %s: %q %v", file, out, err)
		}
	}
	if got := identity(t, img); got != wantIdentity {
		t.Errorf("identities changed:\n%s\nwant:\n%s", got, wantIdentity)
	}
	if out, err := exec.Command(sbin("e2fsck"), "-fn", root).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	// fsck.vfat has no offset option: check a copy of the ESP.
	esp := filepath.Join(t.TempDir(), "esp.img")
	if out, err := exec.Command("dd", "if="+img, "of="+esp, "bs=1M", fmt.Sprintf("skip=%d", reuseEFIOffset>>20), "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	if out, err := exec.Command(sbin("fsck.vfat"), "-n", esp).CombinedOutput(); err != nil || strings.Contains(string(out), "differences") {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
}

// TestKpartxTagsReuse: vmdb2 0.28's kpartx tags with --image, mount
// without mkfs: the image's ext4 and vfat filesystems keep their files
// (owners, modes, links, device nodes, attributes), UUIDs, labels and
// features, get the new files, and check clean; root and the ordinary user
// write the same bytes, and building again gives them again.
func TestKpartxTagsReuse(t *testing.T) {
	checkTools(t, "debugfs", "dumpe2fs", "e2fsck", "fsck.vfat", "mtype", "minfo", "mcopy", "mdir")
	uid, gid := ordinaryUser(t)
	dir, img := firstImage(t)
	want := identity(t, img)
	r, out := reuseBuild(t, os.Getuid(), os.Getgid(), dir, img)
	if r.code != 0 {
		t.Fatalf("reuse as root: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkReused(t, out, want)
	rootSum := fileSHA(t, out)
	noStageLeft(t, filepath.Join(dir, "tmp"))

	r, out = reuseBuild(t, os.Getuid(), os.Getgid(), dir, img)
	if r.code != 0 || fileSHA(t, out) != rootSum {
		t.Errorf("a second reuse as root differs (exit %d)\n%s", r.code, r.stderr)
	}
	r, out = reuseBuild(t, uid, gid, dir, img)
	if r.code != 0 {
		t.Fatalf("reuse as %s: exit %d\n%s%s", testUser, r.code, r.stdout, r.stderr)
	}
	checkReused(t, out, want)
	if sum := fileSHA(t, out); sum != rootSum {
		t.Errorf("root and %s differ: %s vs %s", testUser, rootSum, sum)
	}
}

// TestKpartxHostileImage: the image's root holds links out of it (to /,
// to /etc/passwd, to a host directory and file: the canary) and odd names:
// the import copies the links as links; later steps writing through them
// resolve them inside the image; a write that would need the host's path
// fails; nothing on the host changes, as root or as the ordinary user.
func TestKpartxHostileImage(t *testing.T) {
	checkTools(t, "debugfs", "dumpe2fs", "mcopy", "mdir")
	h := canary.New(t)
	dir, img := firstImage(t, "symlink evil /etc/passwd", "symlink up /", "symlink hostdir "+h.Dir, "symlink secret "+h.File,
		"mkdir ...", "cd /etc", "rm old", "symlink old "+h.File, "cd /")
	through := strings.Replace(reuseSecondSpec, "- create-file: /etc/new", `- create-file: /evil
  contents: through a link
- create-file: /up/etc/x
  contents: via up
- create-file: /.../x
  contents: dots
- create-file: /etc/new`, 1)
	outside := strings.Replace(reuseSecondSpec, "- create-file: /etc/new", "- create-file: /secret\n  contents: out\n- create-file: /etc/new", 1)
	passwd := mustRead(t, "/etc/passwd")
	uid, gid := ordinaryUser(t)
	for _, who := range [][2]int{{os.Getuid(), os.Getgid()}, {uid, gid}} {
		os.WriteFile(filepath.Join(dir, "second.vmdb"), []byte(through), 0o644)
		r, out := reuseBuild(t, who[0], who[1], dir, img)
		h.Check(t)
		if r.code != 0 {
			t.Fatalf("build as %d: exit %d\n%s%s", who[0], r.code, r.stdout, r.stderr)
		}
		for file, want := range map[string]string{"/etc/passwd": "through a link", "/etc/x": "via up", "/.../x": "dots", "/etc/new": "new file"} {
			if got := debugfs(t, out, reuseRootOffset, "cat "+file); got != want {
				t.Errorf("as %d: %s in the image: %q, want %q", who[0], file, got, want)
			}
		}
		if s := debugfs(t, out, reuseRootOffset, "stat /secret"); !strings.Contains(s, "Type: symlink") {
			t.Errorf("/secret is no longer a link:\n%s", s)
		}
		h.NotIn(t, "the image", mustRead(t, out))

		os.WriteFile(filepath.Join(dir, "second.vmdb"), []byte(outside), 0o644)
		if r, _ := reuseBuild(t, who[0], who[1], dir, img); r.code == 0 || !strings.Contains(r.stderr, "second.vmdb:8: create-file") {
			t.Errorf("as %d: writing through a link to the host: exit %d\n%s", who[0], r.code, r.stderr)
		}
		h.Check(t)
		noStageLeft(t, filepath.Join(dir, "tmp"))
	}
	if !bytes.Equal(mustRead(t, "/etc/passwd"), passwd) {
		t.Errorf("the host's /etc/passwd changed")
	}
	if _, err := os.Stat("/etc/x"); err == nil {
		t.Errorf("/etc/x was written on the host")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKpartxSparseBomb: a file whose size is far beyond the stage's free
// space is refused with a message that says so; nothing is left in TMPDIR
// and the image is as it was.
func TestKpartxSparseBomb(t *testing.T) {
	checkTools(t, "debugfs", "dumpe2fs")
	dir, img := firstImage(t, "sif /etc/old size 0xF0000000000")
	before := fileSHA(t, img)
	r, out := reuseBuild(t, os.Getuid(), os.Getgid(), dir, img)
	if r.code == 0 || !strings.Contains(r.stderr, "second.vmdb:4: mount: tag root: importing its ext4 filesystem") ||
		!strings.Contains(r.stderr, "refusing to import the filesystem: its files claim") || !strings.Contains(r.stderr, "/etc/old") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
	noStageLeft(t, filepath.Join(dir, "tmp"))
	if fileSHA(t, out) != before {
		t.Errorf("the image was changed")
	}
}

// TestMkfsTargetOld: Debian's `target_old` turns off large_dir,
// metadata_csum_seed and orphan_file even when the spec's options ask for
// them; the filesystem checks clean. Without it they are on.
func TestMkfsTargetOld(t *testing.T) {
	checkTools(t, "dumpe2fs", "e2fsck", "mke2fs")
	spec := `steps:
- mkimg: "{{ output }}"
  size: 64M
- mklabel: gpt
  device: "{{ output }}"
- mkpart: primary
  device: "{{ output }}"
  start: 1MiB
  end: 100%
  tag: root
- mkfs: ext4
  partition: root
  options: -O large_dir,metadata_csum_seed,orphan_file
  target_old: true
- mount: root
- create-file: /hello
  contents: hi
`
	for _, old := range []bool{true, false} {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
		os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(strings.Replace(spec, "target_old: true", fmt.Sprintf("target_old: %v", old), 1)), 0o644)
		if r := buildAs(t, os.Getuid(), os.Getgid(), dir, nil, "spec.vmdb", "--output", "out.img"); r.code != 0 {
			t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
		}
		fsys := filepath.Join(dir, "out.img") + "?offset=1048576"
		out, err := exec.Command(sbin("dumpe2fs"), "-h", fsys).Output()
		if err != nil {
			t.Fatal(err)
		}
		var features string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Filesystem features:") {
				features = l + " "
			}
		}
		for _, f := range []string{"large_dir", "metadata_csum_seed", "orphan_file"} {
			if strings.Contains(features, " "+f+" ") == old {
				t.Errorf("target_old %v: feature %s: %s", old, f, features)
			}
		}
		if out, err := exec.Command(sbin("e2fsck"), "-fn", fsys).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn: %v\n%s", err, out)
		}
	}
}
