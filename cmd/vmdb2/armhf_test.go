package main

import (
	"debug/elf"
	byteorder "encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
)

// armhfSpec is a small armhf image (msdos, one ext4 root) whose root is
// installed by the step BOOTSTRAP (debootstrap with `arch:`, or
// qemu-debootstrap), minbase, the cheapest foreign tree; a chroot step
// then runs the target's own dpkg under qemu-user during the build.
const armhfSpec = `steps:
  - mkimg: "{{ output }}"
    size: 1G
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - BOOTSTRAP: bookworm
    arch: armhf
    mirror: http://deb.debian.org/debian
    target: /
    variant: minbase
  - chroot: /
    shell: |
      echo armhf > /etc/hostname
      dpkg --print-architecture > /etc/vmdb2-built-for
  - fstab: /
`

// armhfRootOffset is where armhfSpec's root filesystem starts.
const armhfRootOffset = 1 << 20

// TestArmhfBootstrap builds armhfSpec on this (amd64) host both ways a
// spec installs a foreign base system, each through its own engine:
//
//	step                           engine       built as   test
//	debootstrap with arch: armhf   mmdebstrap   root       this one
//	qemu-debootstrap, arch: armhf  debootstrap  the user   this one
//	debootstrap with arch: arm64   mmdebstrap   the user   TestARM64Boot
//	qemu-debootstrap, ppc64el      debootstrap  the user   TestIEEE1275Boot
//
// The pairings left out (debootstrap as root) add nothing foreign: what
// differs between root and an ordinary user (the namespace's mapping,
// device nodes recorded instead of made) does not depend on the
// architecture and is tested for both engines on the host's
// (TestDebootstrapImage, TestDebootstrapExcludeAndCACerts,
// stage/bootstrap), and what is foreign (mmdebstrap's arch and its
// skipped qemu check, debootstrap's second stage and apt-get update run
// under qemu-user, the binfmt_misc handler reached from the namespace)
// depends on the engine. The two builds run at once. Each image's root
// filesystem, taken out with debugfs, must hold an armhf tree
// (checkArmhfTree), and the build's chroot step must have run the
// target's dpkg. The armhf example, which boots, is built and booted by
// TestLongArmhfBoot (make check-long).
func TestArmhfBootstrap(t *testing.T) {
	checkTools(t, "debootstrap", "mmdebstrap", "mke2fs", "debugfs", "unshare")
	testreq.Need(t, testreq.Foreign, bootstrap.CheckArch("armhf"))
	needMirror(t)
	parallelParent(t, true)
	uid, gid := ordinaryUser(t)
	t.Run("debootstrap as root", func(t *testing.T) {
		parallelSub(t)
		dir := writeWorkDir(t, strings.Replace(armhfSpec, "BOOTSTRAP", "debootstrap", 1))
		start := time.Now()
		cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img", "--log", "build.log")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
		checkArmhfBuild(t, dir, runCommand(t, cmd), start)
	})
	t.Run("qemu-debootstrap as "+testUser, func(t *testing.T) {
		parallelSub(t)
		dir := writeWorkDir(t, strings.Replace(armhfSpec, "BOOTSTRAP", "qemu-debootstrap", 1))
		chownTree(t, dir, uid, gid)
		start := time.Now()
		r := runAs(t, uid, gid, dir, []string{"TMPDIR=" + filepath.Join(dir, "tmp")}, userBinary(t),
			"spec.vmdb", "--output", "out.img", "--log", "build.log")
		checkArmhfBuild(t, dir, r, start)
	})
}

// checkArmhfBuild checks that the build r in dir succeeded, left no stage
// and made an image with an armhf root (checkArmhfTree) in which the
// build's chroot step ran the target's dpkg.
func checkArmhfBuild(t *testing.T, dir string, r result, start time.Time) {
	t.Helper()
	if r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(dir, "build.log"))
		t.Fatalf("exit %d: %s\n…\n%s", r.code, r.stderr, tail(string(log), 40))
	}
	t.Logf("built in %v", time.Since(start).Round(time.Second))
	noStageLeft(t, filepath.Join(dir, "tmp"))
	img := filepath.Join(dir, "out.img")
	for path, want := range map[string]string{"/etc/hostname": "armhf\n", "/etc/vmdb2-built-for": "armhf\n"} {
		if got := debugfs(t, img, armhfRootOffset, "cat "+path); got != want {
			t.Errorf("%s is %q, want %q", path, got, want)
		}
	}
	checkArmhfTree(t, rootTree(t, img, armhfRootOffset))
}

// rootTree copies the ext filesystem at offset of img into a new
// directory (debugfs rdump: owners and modes kept as root) and returns it.
func rootTree(t *testing.T, img string, offset int64) string {
	t.Helper()
	dir := t.TempDir()
	debugfs(t, img, offset, "rdump / "+dir)
	if _, err := os.Lstat(filepath.Join(dir, "etc", "os-release")); err != nil {
		t.Fatalf("rdump of %s gave no tree: %v", img, err)
	}
	return dir
}

// checkArmhfTree checks that root holds an armhf system: its /bin/sh,
// resolved inside root, is a 32-bit little-endian ARM ELF of the
// hard-float ABI, and its programs run under qemu-user (runInTree) say
// so: uname -m an ARM machine, dpkg armhf, dpkg's database its own dpkg
// installed.
func checkArmhfTree(t *testing.T, root string) {
	t.Helper()
	if err := checkARMHardFloat(root, "bin/sh"); err != nil {
		t.Error(err)
	}
	out := runInTree(t, root, `uname -m; dpkg --print-architecture; dpkg-query -W -f '${Package} ${Architecture} ${Status}\n' dpkg`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("commands of the tree printed %q", out)
	}
	if lines[0] != "armv7l" && lines[0] != "armv8l" {
		t.Errorf("uname -m under qemu-user: %q, want armv7l or armv8l", lines[0])
	}
	if lines[1] != "armhf" {
		t.Errorf("dpkg --print-architecture: %q, want armhf", lines[1])
	}
	if lines[2] != "dpkg armhf install ok installed" {
		t.Errorf("dpkg-query -W dpkg: %q", lines[2])
	}
}

// efARMABIFloatHard is the ELF header flag of ARM's hard-float ABI
// (armhf; armel's programs lack it).
const efARMABIFloatHard = 0x400

// checkARMHardFloat says what is wrong if the program at path (resolved
// inside root: the tree's own links, e.g. /bin -> usr/bin, are followed
// but cannot lead out of it) is not a 32-bit little-endian ARM ELF of the
// hard-float ABI.
func checkARMHardFloat(root, path string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := r.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	e, err := elf.NewFile(f)
	if err != nil {
		return err
	}
	armhf, _ := debarch.Get("armhf")
	if e.Machine != armhf.ELFMachine || e.Class != armhf.ELFClass || e.Data != elf.ELFDATA2LSB {
		return fmt.Errorf("/%s is %v %v %v, want %v %v ELFDATA2LSB", path, e.Machine, e.Class, e.Data, armhf.ELFMachine, armhf.ELFClass)
	}
	// e_flags, which debug/elf does not expose, follows e_shoff in the
	// 32-bit header.
	hdr := make([]byte, 40)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return err
	}
	if flags := byteorder.LittleEndian.Uint32(hdr[36:]); flags&efARMABIFloatHard == 0 {
		return fmt.Errorf("/%s lacks the hard-float ABI flag (e_flags %#x)", path, flags)
	}
	return nil
}

// runInTree runs the shell command script with root as its root
// directory, in new user and mount namespaces (unshare --root), so the
// tree's foreign programs run through the host's registered qemu-user
// handler as they do in a build; it returns the standard output.
func runInTree(t *testing.T, root, script string) string {
	t.Helper()
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "--root="+root,
		"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "/bin/sh", "-c", script)
	r := runCommand(t, cmd)
	if r.code != 0 {
		t.Fatalf("%s in %s: exit %d\n%s", script, root, r.code, r.stderr)
	}
	return r.stdout
}
