package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// testCacheDir is a directory for rootfs caches kept between test runs:
// /var/cache/vmdb2-test/SUB as root (owned by the ordinary user who
// builds), else under $XDG_CACHE_HOME.
func testCacheDir(t *testing.T, sub string, uid, gid int) string {
	t.Helper()
	base := filepath.Join("/var/cache/vmdb2-test", sub)
	if os.Geteuid() != 0 {
		c, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		base = filepath.Join(c, "vmdb2-test", sub)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(base, uid, gid)
	}
	return base
}

// buildExample builds examples/NAME.vmdb as the ordinary user (or as
// oneself when not root) and returns the image's path.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	spec, tarball := exampleSpec(t, name)
	return buildSpec(t, name, spec, tarball)
}

// exampleSpec returns examples/NAME.vmdb and the rootfs cache its builds
// share. The cache is keyed by the spec's tree steps (treeSteps), so
// examples that make the same tree (bios, uefi and hybrid) share one and
// a cold run bootstraps it once.
func exampleSpec(t *testing.T, name string) (spec, tarball string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", name+".vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data), specTreeCache(t, name, data)
}

// specTreeCache is the rootfs cache of spec's tree steps (treeSteps),
// named by their suite and architecture (name if they have no debootstrap
// step): specs whose steps up to cache-rootfs are the same share it.
func specTreeCache(t *testing.T, name string, spec []byte) string {
	t.Helper()
	steps := treeSteps(spec)
	label := name
	if m := treeSuiteRE.FindSubmatch(steps); m != nil {
		arch := "amd64"
		if a := treeArchRE.FindSubmatch(steps); a != nil {
			arch = string(a[1])
		}
		label = string(m[1]) + "-" + arch
	}
	return treeCache(t, "examples", label, steps)
}

var (
	treeStepsRE = regexp.MustCompile(`(?ms)^  - mount:.*?^  - cache-rootfs:.*?(?:^  - |\z)`)
	treeSuiteRE = regexp.MustCompile(`(?m)^  - (?:qemu-)?debootstrap: (\S+)`)
	treeArchRE  = regexp.MustCompile(`(?m)^    arch: (\S+)`)
)

// treeSteps is the text of the steps that make a spec's cached tree: from
// its first mount through its cache-rootfs step (what comes before writes
// only partition tables, what comes after is not in the cache), or the
// whole spec when it has no cache-rootfs step.
func treeSteps(spec []byte) []byte {
	m := treeStepsRE.Find(spec)
	if m == nil {
		return spec
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(m), "  - "), "\n")
	for len(lines) > 0 { // the comments and blank lines before the next step
		if l := strings.TrimSpace(lines[len(lines)-1]); l != "" && !strings.HasPrefix(l, "#") {
			break
		}
		lines = lines[:len(lines)-1]
	}
	return []byte(strings.Join(lines, ""))
}

// treeCache is the path of a rootfs cache in the test cache's sub
// directory, keyed by inputs (the spec and whatever else goes into the
// cached tree) and by the code that makes trees: a cache keyed by the spec
// alone kept serving trees an older stage/bootstrap had made, and hid a
// regression of its until a fresh machine built them again.
func treeCache(t *testing.T, sub, name string, inputs ...[]byte) string {
	t.Helper()
	h := sha256.New()
	h.Write(treeCodeDigest(t))
	for _, in := range inputs {
		fmt.Fprintf(h, "\x00%d\x00", len(in))
		h.Write(in)
	}
	uid, gid := buildUser(t)
	return filepath.Join(testCacheDir(t, sub, uid, gid), fmt.Sprintf("%s-%x.tar.zst", name, h.Sum(nil)[:8]))
}

var treeCode struct {
	once   sync.Once
	digest []byte
	err    error
}

// treeCodeDigest hashes the Go sources under stage/bootstrap, which runs
// debootstrap and the deferred initramfs and so decides what a cached tree
// holds.
func treeCodeDigest(t *testing.T) []byte {
	t.Helper()
	treeCode.once.Do(func() {
		treeCode.digest, treeCode.err = goSourcesDigest(filepath.Join(repoRoot(t), "stage", "bootstrap"))
	})
	if treeCode.err != nil {
		t.Fatalf("hashing the tree-making code: %v", treeCode.err)
	}
	return treeCode.digest
}

// goSourcesDigest hashes the names and contents of the .go files under
// root that are not tests.
func goSourcesDigest(root string) ([]byte, error) {
	h := sha256.New()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		data, err := os.ReadFile(path)
		fmt.Fprintf(h, "%s\x00%d\x00", strings.TrimPrefix(path, root), len(data))
		h.Write(data)
		return err
	})
	return h.Sum(nil), err
}

// buildUser is the user who builds the test images: the ordinary user when
// running as root, else oneself.
func buildUser(t *testing.T) (uid, gid int) {
	if os.Geteuid() == 0 {
		return ordinaryUser(t)
	}
	return os.Getuid(), os.Getgid()
}

// buildSpec builds spec as the ordinary user (or as oneself when not
// root) with tarball as its --rootfs-tarball and returns the image's path
// (NAME.img).
func buildSpec(t *testing.T, name, spec, tarball string) string {
	t.Helper()
	img, _ := buildSpecWith(t, name, spec, tarball)
	return img
}

// buildSpecWith is buildSpec with more arguments for vmdb2; it also
// returns what vmdb2 printed.
func buildSpecWith(t *testing.T, name, spec, tarball string, extra ...string) (string, result) {
	t.Helper()
	return buildInDir(t, writeWorkDir(t, spec), name, tarball, extra...)
}

// buildInDir is buildSpecWith for a work directory (from writeWorkDir)
// that may hold more of the spec's files.
func buildInDir(t *testing.T, dir, name, tarball string, extra ...string) (string, result) {
	t.Helper()
	uid, gid := buildUser(t)
	args := append([]string{"spec.vmdb", "--output", name + ".img", "--rootfs-tarball", tarball, "--log", "build.log"}, extra...)
	env := []string{"TMPDIR=" + filepath.Join(dir, "tmp")}
	// A missing cache is built by one test while the others wait; a cache
	// that is there is only read (the program writes caches atomically),
	// by any number of builds at once.
	if _, err := os.Stat(tarball); tarball != "" && err != nil {
		defer lockTreeCache(t, tarball)()
	}
	start := time.Now()
	var r result
	if os.Geteuid() == 0 {
		chownTree(t, dir, uid, gid)
		r = runAs(t, uid, gid, dir, env, userBinary(t), args...)
	} else {
		r = runVmdb2(t, dir, "", args...)
	}
	if r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(dir, "build.log"))
		lines := strings.Split(string(log), "\n")
		t.Fatalf("building %s failed: %s\n…\n%s", name, r.stderr, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	t.Logf("built %s in %v (cache %s)", name, time.Since(start).Round(time.Second), filepath.Base(tarball))
	noStageLeft(t, filepath.Join(dir, "tmp"))
	return filepath.Join(dir, name+".img"), r
}

var rootUUIDRE = regexp.MustCompile(`(?m)^UUID=([0-9a-f-]{36}) / `)

// bootAndCheck boots img, logs in as root on the serial console and checks
// that / is the image's root filesystem (by UUID), mounted read-write.
// Each of checks then runs in the logged-in guest.
func bootAndCheck(t *testing.T, img string, fw qemuboot.Firmware, rootOffset int64, checks ...func(vm *qemuboot.VM)) {
	t.Helper()
	fstab := debugfs(t, img, rootOffset, "cat /etc/fstab")
	m := rootUUIDRE.FindStringSubmatch(fstab)
	if m == nil {
		t.Fatalf("no root in fstab:\n%s", fstab)
	}
	var console strings.Builder
	// Room for one restart of a stalled firmware (firmwareStall) and the
	// checks after the prompt.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Started as the boot check starts it: a UEFI firmware that stalls
	// before its boot manager is restarted once.
	var said bytes.Buffer
	disp := &display{stdout: io.Discard, stderr: &said, now: time.Now}
	vm, err := startFirmware(ctx, img, fw, qemuboot.TCG, &console, 5*time.Minute, disp)
	if said.Len() > 0 {
		t.Log(said.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.WaitFor("login:", 5*time.Minute-vm.Elapsed()); err != nil {
		t.Fatalf("no login prompt: %v\nconsole:\n%s", err, tail(console.String(), 60))
	}
	t.Logf("login prompt after %v", vm.Elapsed().Round(time.Second))
	if err := vm.Login("root"); err != nil {
		t.Fatalf("login: %v\n%s", err, tail(console.String(), 30))
	}
	out, err := vm.Run("findmnt -n -o UUID,OPTIONS /", time.Minute)
	if err != nil || !strings.Contains(out, m[1]) || !strings.Contains(out, "rw") {
		t.Errorf("findmnt /: %q (%v); want UUID %s, rw", out, err, m[1])
	}
	if out, err := vm.Run("touch /x && echo written", time.Minute); err != nil || !strings.Contains(out, "written") {
		t.Errorf("root is not writable: %q %v", out, err)
	}
	for _, check := range checks {
		check(vm)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestExamplesBoot builds each example as an ordinary user and boots it
// under the firmware it targets (the hybrid one under both, by the build's
// own --boot-check, which must pick SeaBIOS and OVMF from its two grub
// steps and see a login prompt under each); then, from the rootfs cache
// the build made, root and the ordinary user must build the same bytes
// (checkExampleReproducible). The bios example's cache also serves
// checkBootCheckNoKernel.
func TestExamplesBoot(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs")
	needMirror(t)
	defer parallelBuild(t)()
	cases := []struct {
		name       string
		firmware   []qemuboot.Firmware
		rootOffset int64
		bootCheck  bool
	}{
		{"bios", []qemuboot.Firmware{qemuboot.BIOS}, 1 << 20, false},
		{"uefi", []qemuboot.Firmware{qemuboot.UEFI}, 129 << 20, false},
		{"hybrid", []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI}, 130 << 20, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The three share a rootfs cache (exampleSpec): the first
			// makes it in this test's turn, and then the others unpack
			// it in parallel, neither of them holding a turn while it
			// waits for the cache.
			if i > 0 {
				parallelSub(t)
			}
			for _, fw := range c.firmware {
				testreq.Need(t, testreq.Boot, qemuboot.Available(fw))
			}
			if c.bootCheck {
				spec, tarball := exampleSpec(t, c.name)
				_, r := buildSpecWith(t, c.name, spec, tarball, "--boot-check")
				checkBootCheckPassed(t, r.stderr, c.firmware...)
			} else {
				img := buildExample(t, c.name)
				for _, fw := range c.firmware {
					name := map[qemuboot.Firmware]string{qemuboot.BIOS: "SeaBIOS", qemuboot.UEFI: "OVMF"}[fw]
					t.Run(name, func(t *testing.T) { bootAndCheck(t, img, fw, c.rootOffset) })
				}
			}
			t.Run("reproducible", func(t *testing.T) { checkExampleReproducible(t, c.name) })
			if c.name == "bios" {
				t.Run("boot-check-without-kernel", checkBootCheckNoKernel)
			}
		})
	}
}

// TestExamplesShareTrees: the examples whose steps up to cache-rootfs are
// the same share one rootfs cache, and the others have their own.
// Sharing only saves builds: specs whose tree steps differ get caches of
// their own.
func TestExamplesShareTrees(t *testing.T) {
	caches := map[string]string{}
	for _, name := range []string{"bios", "uefi", "hybrid", "secureboot", "luks-lvm", "arm64", "armhf", "ppc64el"} {
		_, caches[name] = exampleSpec(t, name)
	}
	if caches["bios"] != caches["uefi"] || caches["bios"] != caches["hybrid"] {
		t.Errorf("bios, uefi and hybrid make one tree but have caches %s, %s, %s", caches["bios"], caches["uefi"], caches["hybrid"])
	}
	if !strings.HasPrefix(filepath.Base(caches["arm64"]), "bookworm-arm64-") {
		t.Errorf("arm64's cache is %s", caches["arm64"])
	}
	seen := map[string]string{}
	for _, name := range []string{"bios", "secureboot", "luks-lvm", "arm64", "armhf", "ppc64el"} {
		if other, ok := seen[caches[name]]; ok {
			t.Errorf("%s and %s make different trees but share the cache %s", name, other, caches[name])
		}
		seen[caches[name]] = name
	}
	// The LUKS, LVM and separate-boot tests' specs share one cache
	// (specTreeCache).
	luksLVM, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "luks-lvm.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"luks/root-bios", "lvm/uefi", "separate-boot/bios", "separate-boot/uefi"} {
		spec, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", name+".vmdb"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(treeSteps(spec), treeSteps(luksLVM)) {
			t.Errorf("testdata/%s.vmdb and examples/luks-lvm.vmdb make different trees:\n%s\n%s", name, treeSteps(spec), treeSteps(luksLVM))
		}
	}
	if got := specTreeCache(t, "separate-boot", []byte(strings.Replace(string(luksLVM), "      - lvm2\n", "      - lvm2\n      - gdisk\n", 1))); got == caches["luks-lvm"] {
		t.Errorf("a spec with one more package shares luks-lvm's cache %s", got)
	}
	spec := []byte("steps:\n  - mkimg: x\n  - mount: /\n  - debootstrap: bookworm\n")
	if got := treeSteps(spec); !bytes.Equal(got, spec) {
		t.Errorf("a spec without cache-rootfs: tree steps %q", got)
	}
	tree := "  - mount: /\n  - debootstrap: bookworm\n  - cache-rootfs: /\n    unless: rootfs_unpacked\n"
	if got := string(treeSteps([]byte("steps:\n  - mkimg: x\n" + tree + "  - fstab: /\n"))); got != tree {
		t.Errorf("tree steps %q, want %q", got, tree)
	}
	if got := string(treeSteps([]byte("steps:\n" + tree))); got != tree {
		t.Errorf("tree steps at the end: %q, want %q", got, tree)
	}
}
