package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

var mtime = time.Unix(1690000000, 0)

const cacheSpec = `steps:
  - mkimg: "{{ output }}"
    size: 120M
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: root
  - mkfs: ext4
    partition: root
  - mount: root
  - unpack-rootfs: root
  # Replace the cache by our own (vmdb2 0.28's force).
  - cache-rootfs: root
    force: true
`

// vmdb2Tarball makes a rootfs cache the way vmdb2 does (GNU tar -caf,
// gzip), from a tree holding every kind of entry. It needs root for the
// owners and the device node.
func vmdb2Tarball(t *testing.T, path string) {
	t.Helper()
	tree := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "usr/bin", "dev", "var/empty", "home/u"} {
		must(os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(tree, "etc/shadow"), []byte("root:*:19000:0:99999:7:::\n"), 0o640))
	must(os.Chown(filepath.Join(tree, "etc/shadow"), 0, 42))
	must(os.WriteFile(filepath.Join(tree, "usr/bin/passwd"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(tree, "usr/bin/passwd"), 0o755|os.ModeSetuid))
	must(os.Link(filepath.Join(tree, "usr/bin/passwd"), filepath.Join(tree, "usr/bin/passwd-link")))
	must(os.Symlink("/usr/bin/passwd", filepath.Join(tree, "usr/bin/chpasswd")))
	must(syscall.Mkfifo(filepath.Join(tree, "var/empty/fifo"), 0o600))
	must(os.Chown(filepath.Join(tree, "home/u"), 1000, 1000))
	must(syscall.Mknod(filepath.Join(tree, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3))
	must(os.Chmod(filepath.Join(tree, "dev/null"), 0o666))
	for _, p := range []string{".", "etc", "usr", "usr/bin", "dev", "var", "var/empty", "home"} {
		os.Chtimes(filepath.Join(tree, p), mtime, mtime)
	}
	cmd := exec.Command("tar", "--one-file-system", "-C", tree, "-caf", path, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
}

func checkCachedImage(t *testing.T, img string) {
	t.Helper()
	const off = 1 << 20
	if out, err := exec.Command(sbin("e2fsck"), "-fn", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
	for _, c := range []struct{ path, mode, uid, gid string }{
		{"/etc/shadow", "0640", "0", "42"},
		{"/usr/bin/passwd", "04755", "0", "0"},
		{"/home/u", "0755", "1000", "1000"},
		{"/dev/null", "0666", "0", "0"},
		{"/var/empty/fifo", "0600", "0", "0"},
	} {
		st := debugfs(t, img, off, "stat "+c.path)
		if m := statRE.FindStringSubmatch(st); m == nil || m[1] != c.mode || m[2] != c.uid || m[3] != c.gid {
			t.Errorf("%s: %v, want %s %s:%s", c.path, m, c.mode, c.uid, c.gid)
		}
	}
	if st := debugfs(t, img, off, "stat /dev/null"); !strings.Contains(st, "character special") || !strings.Contains(st, "01:03") {
		t.Errorf("/dev/null is not the char device 1:3:\n%s", st)
	}
	if st := debugfs(t, img, off, "stat /usr/bin/passwd-link"); !strings.Contains(st, "Links: 2") {
		t.Errorf("hard link lost:\n%s", st)
	}
}

// TestRootfsCache: a vmdb2-made cache and our own cache-rootfs's unpack
// into identical images, as root and as an ordinary user, and our cache is
// reproducible.
func TestRootfsCache(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs", "e2fsck", "tar")
	testreq.NeedRoot(t, "to make a vmdb2-style cache with owners and devices")
	env := []string{"SOURCE_DATE_EPOCH=1700000000"}
	// The tarball is named relative to the build directory, so that the
	// rendered specs, and with them the build seeds, are the same.
	build := func(dir, tarball string) {
		t.Helper()
		cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img", "--rootfs-tarball", filepath.Base(tarball))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append(env, "TMPDIR="+filepath.Join(dir, "tmp"))...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		noStageLeft(t, filepath.Join(dir, "tmp"))
	}
	// X: from vmdb2's cache; it leaves our own cache in its place.
	dirX := writeWorkDir(t, cacheSpec)
	tarball := filepath.Join(dirX, "rootfs.tar.gz")
	vmdb2Tarball(t, tarball)
	theirs, _ := os.ReadFile(tarball)
	build(dirX, tarball)
	checkCachedImage(t, filepath.Join(dirX, "out.img"))
	ours, _ := os.ReadFile(tarball)
	if string(ours) == string(theirs) {
		t.Errorf("cache-rootfs with force: true left the existing tarball")
	}

	// Y: from our cache.
	dirY := writeWorkDir(t, cacheSpec)
	os.WriteFile(filepath.Join(dirY, "rootfs.tar.gz"), ours, 0o644)
	build(dirY, filepath.Join(dirY, "rootfs.tar.gz"))
	if a, b := fileSHA(t, filepath.Join(dirX, "out.img")), fileSHA(t, filepath.Join(dirY, "out.img")); a != b {
		t.Errorf("images from vmdb2's cache and from ours differ")
		if os.Getenv("VMDB2_KEEP") != "" {
			exec.Command("cp", filepath.Join(dirX, "out.img"), "/tmp/x.img").Run()
			exec.Command("cp", filepath.Join(dirY, "out.img"), "/tmp/y.img").Run()
		}
	}
	again, _ := os.ReadFile(filepath.Join(dirY, "rootfs.tar.gz"))
	if string(again) != string(ours) {
		t.Errorf("cache-rootfs is not reproducible")
	}
	// U: an ordinary user builds from our cache: same image.
	uid, gid := ordinaryUser(t)
	dirU := writeWorkDir(t, cacheSpec)
	os.WriteFile(filepath.Join(dirU, "rootfs.tar.gz"), ours, 0o644)
	chownTree(t, dirU, uid, gid)
	r := runAs(t, uid, gid, dirU, append(env, "TMPDIR="+filepath.Join(dirU, "tmp")), userBinary(t),
		"spec.vmdb", "--output", "out.img", "--rootfs-tarball", "rootfs.tar.gz")
	if r.code != 0 {
		t.Fatalf("build as %s: %s", testUser, r.stderr)
	}
	noStageLeft(t, filepath.Join(dirU, "tmp"))
	checkCachedImage(t, filepath.Join(dirU, "out.img"))
	if a, b := fileSHA(t, filepath.Join(dirX, "out.img")), fileSHA(t, filepath.Join(dirU, "out.img")); a != b {
		t.Errorf("root and ordinary-user images from the same cache differ")
	}
}
