package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// checkExampleReproducible builds examples/NAME.vmdb twice from its
// rootfs cache (TestExamplesBoot calls it after building the example, so
// the cache is there and no parallel test holds it), in different stage directories some seconds
// apart, once as root and once as an ordinary user, with
// SOURCE_DATE_EPOCH set: the images must have the same sha256.
func checkExampleReproducible(t *testing.T, name string) {
	t.Helper()
	testreq.NeedRoot(t, "to compare root and ordinary-user builds")
	uid, gid := ordinaryUser(t)
	spec, cache := exampleSpec(t, name)
	if _, err := os.Stat(cache); err != nil {
		buildExample(t, name) // makes the cache
	}
	data, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"SOURCE_DATE_EPOCH=1700000000"}
	// As root.
	rootDir := writeWorkDir(t, string(spec))
	os.WriteFile(filepath.Join(rootDir, "cache.tar.zst"), data, 0o644)
	cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img", "--rootfs-tarball", "cache.tar.zst")
	cmd.Dir = rootDir
	cmd.Env = append(os.Environ(), append(env, "TMPDIR="+filepath.Join(rootDir, "tmp"))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build as root: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second)
	// As the ordinary user, elsewhere.
	userDir := writeWorkDir(t, string(spec))
	os.WriteFile(filepath.Join(userDir, "cache.tar.zst"), data, 0o644)
	chownTree(t, userDir, uid, gid)
	r := runAs(t, uid, gid, userDir, append(env, "TMPDIR="+filepath.Join(userDir, "tmp")), userBinary(t),
		"spec.vmdb", "--output", "out.img", "--rootfs-tarball", "cache.tar.zst")
	if r.code != 0 {
		t.Fatalf("build as %s: %s", testUser, r.stderr)
	}
	a, b := fileSHA(t, filepath.Join(rootDir, "out.img")), fileSHA(t, filepath.Join(userDir, "out.img"))
	if a != b {
		t.Errorf("root and ordinary-user builds differ: %s vs %s", a, b)
	} else {
		t.Logf("%s.img sha256 %s from both builds", name, a)
	}
}

// TestColdBuildsReproducible: two builds from nothing (debootstrap from the
// mirror and the kernel), one after the other, with one SOURCE_DATE_EPOCH,
// give identical images (checked by --check-reproducible).
func TestColdBuildsReproducible(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs")
	needMirror(t)
	parallelBuild(t)
	spec, err := os.ReadFile(filepath.Join(repoRoot(t), "bench", "cold.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeWorkDir(t, string(spec))
	cmd := exec.Command(binary, "spec.vmdb", "--output", "cold.img", "--check-reproducible")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "TMPDIR="+filepath.Join(dir, "tmp"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "reproducible: both builds") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

// placeSpec builds from files only (no debootstrap): GPT, an ESP and an
// ext4 root with a relative copy-file and copy-dir, an fstab, and an
// unpack-rootfs whose cache does not exist.
const placeSpec = `steps:
  - mkimg: "{{ output }}"
    size: 64M
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 17MiB
    tag: efi
  - mkpart: primary
    device: "{{ output }}"
    start: 17MiB
    end: 100%
    tag: /
  - mkfs: vfat
    partition: efi
  - mkfs: ext4
    partition: /
  - mount: /
  - unpack-rootfs: /
  - mount: efi
    dirname: /boot/efi
    mount-on: /
  - create-dir: /etc
  - copy-file: /etc/a.txt
    src: src/a.txt
  - copy-dir: /srv/tree
    src: src
    uid: 1000
  - create-file: /boot/efi/hello
    contents: hello
  - fstab: /
`

// TestSameBytesAnywhere: one spec built as root and as the ordinary user,
// in different directories, with different output names, current
// directories and rootfs-tarball paths, gives one sha256: the default seed
// and the bytes do not depend on where the build runs.
func TestSameBytesAnywhere(t *testing.T) {
	checkTools(t, "mke2fs")
	uid, gid := ordinaryUser(t)
	env := []string{"SOURCE_DATE_EPOCH=1700000000"}

	rootDir := writeWorkDir(t, placeSpec)
	cmd := exec.Command(binary, "spec.vmdb", "--output", "disk.img", "--rootfs-tarball", filepath.Join(rootDir, "cache", "root.tar.gz"))
	cmd.Dir = rootDir
	cmd.Env = append(os.Environ(), append(env, "TMPDIR="+filepath.Join(rootDir, "tmp"))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build as root: %v\n%s", err, out)
	}

	// The user builds from a sub-directory into another name elsewhere.
	userDir := t.TempDir()
	work := filepath.Join(userDir, "job-17", "checkout")
	os.MkdirAll(work, 0o755)
	os.Mkdir(filepath.Join(userDir, "out"), 0o755)
	data, _ := os.ReadFile(filepath.Join(rootDir, "spec.vmdb"))
	os.WriteFile(filepath.Join(work, "build.vmdb"), data, 0o644)
	if err := exec.Command("cp", "-a", filepath.Join(rootDir, "src"), work).Run(); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(userDir, "tmp"), 0o755)
	chownTree(t, userDir, uid, gid)
	r := runAs(t, uid, gid, work, append(env, "TMPDIR="+filepath.Join(userDir, "tmp")), userBinary(t),
		"build.vmdb", "--output", "../../out/image-of-job-17.raw", "--rootfs-tarball", "/nonexistent/cache.tar.zst")
	if r.code != 0 {
		t.Fatalf("build as %s: %s", testUser, r.stderr)
	}
	a, b := fileSHA(t, filepath.Join(rootDir, "disk.img")), fileSHA(t, filepath.Join(userDir, "out", "image-of-job-17.raw"))
	if a != b {
		t.Errorf("the builds differ: %s (root, %s) vs %s (%s, %s)", a, rootDir, b, testUser, userDir)
	} else {
		t.Logf("one sha256 from both builds: %s", a)
	}
}

// TestCheckReproducibleElsewhere: --check-reproducible builds its second
// image in another directory under another name, so an image that depends
// on its path is caught; an identical one leaves nothing behind.
func TestCheckReproducibleElsewhere(t *testing.T) {
	checkTools(t, "mke2fs")
	dir := writeWorkDir(t, placeSpec)
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "disk.img", "--rootfs-tarball", "cache.tar.gz", "--check-reproducible")
	if r.code != 0 || !strings.Contains(r.stdout, "reproducible: both builds") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`second build: (\S+)`).FindStringSubmatch(r.stdout)
	if m != nil && !filepath.IsAbs(m[1]) {
		m[1] = filepath.Join(dir, m[1])
	}
	if m == nil || filepath.Dir(m[1]) == dir || filepath.Dir(filepath.Dir(m[1])) != dir || !strings.HasSuffix(m[1], "/disk.img.check") {
		t.Errorf("the second build is not in another directory beside the first: %q", r.stdout)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".vmdb2-check-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}

	// A spec that writes the output's path into the image.
	dir = writeWorkDir(t, strings.Replace(placeSpec, "contents: hello", `contents: "{{ output }}"`, 1))
	r = runVmdb2(t, dir, "", "spec.vmdb", "--output", "disk.img", "--rootfs-tarball", "cache.tar.gz", "--check-reproducible")
	if r.code != 1 || !strings.Contains(r.stdout, "NOT reproducible") {
		t.Errorf("a path-dependent image passed: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
