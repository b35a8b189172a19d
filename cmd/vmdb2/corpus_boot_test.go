package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// The upstream vmdb2 example specs of the corpus (testdata/corpus) that
// must build unprivileged and boot. They are built from the corpus files
// with the smallest textual rewrite that makes them buildable here; every
// rewrite must apply exactly once, so a changed corpus file fails the test
// instead of silently building something else.
//
// The rewrites, and why:
//
//   - every spec: the suite `buster` becomes `bookworm` (the README's
//     verdict B: buster is gone from deb.debian.org). 01 and 07 use
//     qemu-debootstrap with arch amd64, which on an amd64 host is a native
//     debootstrap; it is kept as written.
//   - 01 and 02: `console: serial` is added to the grub step. Neither spec
//     asks for a serial console, so vmdb2 writes no console=ttyS0 to the
//     kernel command line, the kernel's console is tty0 (the VGA screen the
//     test VM does not have) and systemd starts no getty on ttyS0: the
//     serial login prompt never appears, with vmdb2 as with us (checked:
//     02 as written prints GRUB's "Booting in blind mode" and then nothing
//     on ttyS0 for three minutes). The
//     rewrite gives the kernel console=tty0 console=ttyS0,115200n8, as
//     vmdb2's `console: serial` does. 07 already has it.
//
// Nothing else changes: the specs' own chroot scripts empty root's
// password (sed on /etc/passwd), so `root` logs in without one.
type corpusBootCase struct {
	file     string
	rewrites []corpusRewrite
	rootPart int // 1-based number of the root partition in the table
	firmware qemuboot.Firmware
	files    []string // files copied into the work directory from testdata/corpus-files
	check    func(t *testing.T, img string, rootOffset int64)
}

type corpusRewrite struct{ old, new string }

var busterToBookworm = corpusRewrite{"debootstrap: buster\n", "debootstrap: bookworm\n"}

var corpusBootCases = []corpusBootCase{
	{
		file: "01-vmdb2-amd64-bios.vmdb",
		rewrites: []corpusRewrite{busterToBookworm,
			{"  - grub: bios\n", "  - grub: bios\n    console: serial\n"}},
		rootPart: 1,
		firmware: qemuboot.BIOS,
		check:    checkCorpusBIOS,
	},
	{
		file: "02-vmdb2-amd64-uefi-virtualfs.vmdb",
		rewrites: []corpusRewrite{busterToBookworm,
			{"  - grub: uefi\n", "  - grub: uefi\n    console: serial\n"}},
		rootPart: 2,
		firmware: qemuboot.UEFI,
		check:    checkCorpusUEFI,
	},
	{
		// The smoke spec creates files before debootstrap and, unlike what
		// its name suggests, is a complete system with GRUB and a serial
		// console: its files are checked with debugfs and it is booted too.
		file:     "07-vmdb2-smoke-amd64-files.vmdb",
		rewrites: []corpusRewrite{busterToBookworm},
		rootPart: 2,
		firmware: qemuboot.BIOS,
		files:    []string{"smoke-copy-file.txt"},
		check:    checkCorpusSmoke,
	},
}

// rewriteCorpusSpec applies the rewrites, each of which must match exactly
// once.
func rewriteCorpusSpec(t *testing.T, spec string, rewrites []corpusRewrite) string {
	t.Helper()
	for _, r := range rewrites {
		if n := strings.Count(spec, r.old); n != 1 {
			t.Fatalf("the corpus spec has changed: %q occurs %d times, the test's rewrite expects it once", r.old, n)
		}
		spec = strings.Replace(spec, r.old, r.new, 1)
	}
	return spec
}

// TestCorpusBootInputs: the files TestCorpusSpecsBoot builds from are in
// the repository and its rewrites still apply, each once (checked without
// building, so also under -short and from a lone clone).
func TestCorpusBootInputs(t *testing.T) {
	for _, c := range corpusBootCases {
		orig, err := os.ReadFile(filepath.Join(corpusDir(t), c.file))
		if err != nil {
			t.Fatal(err)
		}
		rewriteCorpusSpec(t, string(orig), c.rewrites)
		for _, f := range c.files {
			if _, err := os.Stat(filepath.Join(repoRoot(t), "testdata", "corpus-files", f)); err != nil {
				t.Errorf("%s: %v", c.file, err)
			}
		}
	}
}

// buildCorpusSpec builds the rewritten spec as the ordinary user (or as
// oneself when not root) with a rootfs cache keyed by the rewritten spec
// (treeCache), and returns the image's path.
func buildCorpusSpec(t *testing.T, c corpusBootCase, spec string) string {
	t.Helper()
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = ordinaryUser(t)
	}
	name := strings.TrimSuffix(c.file, ".vmdb")
	tarball := treeCache(t, "corpus", name, []byte(spec))
	_, cached := os.Stat(tarball)
	dir := writeWorkDir(t, spec)
	for _, f := range c.files {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "corpus-files", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := name + ".img"
	args := []string{"spec.vmdb", "--output", img, "--rootfs-tarball", tarball, "--log", "build.log"}
	env := []string{"TMPDIR=" + filepath.Join(dir, "tmp")}
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
		hint := ""
		if strings.Contains(r.stderr, "qemu-debootstrap: debootstrap target") && strings.Contains(r.stderr, "is a not an empty directory") {
			// vmdb2 0.26's qemu-debootstrap has no require_empty_target
			// check (only debootstrap has one), and debootstrap itself
			// installs into a non-empty directory: 07 creates its smoke
			// files before qemu-debootstrap and builds with vmdb2.
			hint = "\nthis is a bug in the program, not in the spec: vmdb2 0.26's qemu-debootstrap does not require an empty target (steps/qemu_debootstrap.go passes requireEmpty=true to bootstrap)"
		}
		t.Fatalf("building the corpus spec %s (rewritten as the test says) failed with exit %d:\n%s%s\n…\n%s",
			c.file, r.code, r.stderr, hint, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	how := "from the rootfs cache"
	if cached != nil {
		how = "with debootstrap, cache written"
	}
	t.Logf("built %s in %v, %s (%s)", c.file, time.Since(start).Round(time.Second), how, filepath.Base(tarball))
	noStageLeft(t, filepath.Join(dir, "tmp"))
	return filepath.Join(dir, img)
}

// partitionOffset returns the byte offset of partition number n (1-based)
// as `sfdisk -J` reports it.
func partitionOffset(t *testing.T, img string, n int) int64 {
	t.Helper()
	pt := readPartTable(t, img)
	for _, p := range pt.Partitions {
		if strings.HasSuffix(p.Node, fmt.Sprint(n)) && strings.TrimSuffix(p.Node, fmt.Sprint(n)) == img {
			return p.Start * pt.SectorSize
		}
	}
	t.Fatalf("no partition %d in %s: %+v", n, img, pt)
	return 0
}

// checkStat checks a path's mode and owner in the ext filesystem at off,
// and its content when want is not nil.
func checkStat(t *testing.T, img string, off int64, path, mode, uid, gid string, want *string) {
	t.Helper()
	st := debugfs(t, img, off, "stat "+path)
	if m := statRE.FindStringSubmatch(st); m == nil || m[1] != mode || m[2] != uid || m[3] != gid {
		t.Errorf("%s: got %v, want mode %s owner %s:%s\n%s", path, m, mode, uid, gid, st)
	}
	if want != nil {
		if got := debugfs(t, img, off, "cat "+path); got != *want {
			t.Errorf("%s: content %q, want %q", path, got, *want)
		}
	}
}

func ptr(s string) *string { return &s }

// checkCorpusCommon checks what every upstream example does: a clean root
// filesystem, root without password, the hostname, the kernel and GRUB's
// configuration with the serial console the rewrite asks for.
func checkCorpusCommon(t *testing.T, img string, off int64, hostname string) {
	t.Helper()
	if out, err := exec.Command(sbin("e2fsck"), "-fn", fmt.Sprintf("%s?offset=%d", img, off)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	// The file's mode is whatever the build host's /etc/hostname has:
	// debootstrap copies it with cp -a, and the spec's echo keeps it.
	if got := debugfs(t, img, off, "cat /etc/hostname"); got != hostname+"\n" {
		t.Errorf("/etc/hostname: %q, want %q", got, hostname+"\n")
	}
	if passwd := debugfs(t, img, off, "cat /etc/passwd"); !strings.HasPrefix(passwd, "root::0:0:") {
		t.Errorf("root's password is not empty in /etc/passwd:\n%s", passwd)
	}
	if ls := debugfs(t, img, off, "ls -l /boot"); !strings.Contains(ls, "vmlinuz-") || !strings.Contains(ls, "initrd.img-") {
		t.Errorf("no kernel or initrd in /boot:\n%s", ls)
	}
	if cfg := debugfs(t, img, off, "cat /boot/grub/grub.cfg"); !strings.Contains(cfg, "console=ttyS0,115200n8") {
		t.Errorf("grub.cfg does not put the kernel's console on ttyS0:\n%s", tail(cfg, 40))
	}
}

func checkCorpusBIOS(t *testing.T, img string, off int64) {
	checkCorpusCommon(t, img, off, "amd64")
	// The spec's chroot installs python3 and parted; resize-rootfs installs
	// its first-boot service.
	for _, p := range []string{"/usr/bin/python3", "/usr/sbin/parted", "/usr/sbin/resize-rootfs"} {
		if st := debugfs(t, img, off, "stat "+p); !strings.Contains(st, "Inode:") {
			t.Errorf("%s is missing:\n%s", p, st)
		}
	}
	if st := debugfs(t, img, off, "stat /etc/systemd/system/systemd-remount-fs.service.requires/resize-rootfs.service"); !strings.Contains(st, "Type: symlink") {
		t.Errorf("the resize-rootfs service is not enabled:\n%s", st)
	}
}

func checkCorpusUEFI(t *testing.T, img string, off int64) {
	checkCorpusCommon(t, img, off, "uefi-vmdb2")
	// The spec never mounts the ESP: GRUB's files are put there anyway.
	esp := partitionOffset(t, img, 1)
	out, err := exec.Command("mdir", "-b", "-i", fmt.Sprintf("%s@@%d", img, esp), "::/EFI/BOOT").CombinedOutput()
	if err != nil || !strings.Contains(strings.ToUpper(string(out)), "BOOTX64.EFI") {
		t.Errorf("no EFI/BOOT/BOOTX64.EFI on the ESP: %v\n%s", err, out)
	}
}

func checkCorpusSmoke(t *testing.T, img string, off int64) {
	checkCorpusCommon(t, img, off, "amd64-vmdb2")
	if st := debugfs(t, img, off, "stats"); !strings.Contains(st, "Filesystem volume name:   smoke\n") {
		t.Errorf("the root filesystem's label is not smoke:\n%s", tail(st, 80))
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "corpus-files", "smoke-copy-file.txt"))
	if err != nil {
		t.Fatal(err)
	}
	checkStat(t, img, off, "/smoke-dir", "0777", "1000", "1000", nil)
	// contents: is a plain scalar; vmdb2 writes it as is, without newline.
	checkStat(t, img, off, "/smoke-create-file.txt", "0777", "1000", "1000", ptr("No smoke here."))
	checkStat(t, img, off, "/smoke-copy-file.txt", "0777", "1000", "1000", ptr(string(src)))
}

// TestCorpusSpecsBoot builds upstream vmdb2's own example specs from the
// corpus (01 BIOS, 02 UEFI, 07 smoke), rewritten only as the comment on
// corpusBootCase says, as an ordinary user, checks their files with
// debugfs and boots each to a root login on the serial console (01 and
// 07 under SeaBIOS, 02 under OVMF).
func TestCorpusSpecsBoot(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs", "e2fsck", "sfdisk", "mdir")
	needMirror(t)
	parallelParent(t, false)
	dir := corpusDir(t)
	for _, c := range corpusBootCases {
		t.Run(strings.TrimSuffix(c.file, ".vmdb"), func(t *testing.T) {
			// Each spec has a rootfs cache of its own.
			parallelSub(t)
			testreq.Need(t, testreq.Boot, qemuboot.Available(c.firmware))
			orig, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			spec := rewriteCorpusSpec(t, string(orig), c.rewrites)
			img := buildCorpusSpec(t, c, spec)
			off := partitionOffset(t, img, c.rootPart)
			t.Run("files", func(t *testing.T) { c.check(t, img, off) })
			name := map[qemuboot.Firmware]string{qemuboot.BIOS: "SeaBIOS", qemuboot.UEFI: "OVMF"}[c.firmware]
			t.Run(name, func(t *testing.T) { bootAndCheck(t, img, c.firmware, off) })
		})
	}
}
