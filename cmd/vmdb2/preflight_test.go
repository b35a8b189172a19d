package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
	"github.com/vmdb2-go/vmdb2/steps"
)

// TestMissingToolRefusedFirst: with mke2fs gone from the host (the sbin
// directories hidden in a private mount namespace) an ext4 build is
// refused at its mkfs step, naming the Debian package, before the output
// is touched; --dry-run says the same.
func TestMissingToolRefusedFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a mount namespace; skipped with -short")
	}
	c := badSpecCase{name: "no mke2fs", spec: badRooted + "  - fstab: /\n",
		want: []string{"spec.vmdb:11: mkfs: this step needs the host program mke2fs, which is not installed: install the Debian package e2fsprogs"}}
	empty := t.TempDir()
	// Hide every directory that holds mke2fs, keep PATH to the rest.
	hide := "mount --bind " + empty + " /usr/sbin"
	if fi, err := os.Lstat("/sbin"); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		hide += " && mount --bind " + empty + " /sbin"
	}
	refusedWithHidden(t, c, hide)
}

// TestForeignArchRefusedFirst: with the host's binfmt_misc handlers out
// of sight (an empty directory over /proc/sys/fs/binfmt_misc, and
// arch-test, if installed, hidden too, in a private mount namespace) a
// build for armhf is refused at its debootstrap step, before the output
// is touched, with the line that registers qemu-arm's handler; --dry-run
// says the same.
func TestForeignArchRefusedFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a mount namespace; skipped with -short")
	}
	foreign := "armhf"
	if steps.HostArch() == foreign {
		foreign = "arm64"
	}
	a, _ := debarch.Get(foreign)
	c := badSpecCase{name: "no handler", spec: badRooted + "  - debootstrap: bookworm\n    target: /\n    mirror: http://deb.debian.org/debian\n    arch: " + foreign + "\n  - fstab: /\n",
		want: []string{"spec.vmdb:14: debootstrap: this host (" + steps.HostArch() + ") cannot run " + foreign + " programs (no binfmt_misc entry /proc/sys/fs/binfmt_misc/" + a.Binfmt() + ")",
			"to run them through qemu-user, as root: ", "/usr/lib/binfmt.d/" + a.Binfmt() + ".conf"}}
	hide := "mount --bind " + t.TempDir() + " /proc/sys/fs/binfmt_misc"
	if p, err := exec.LookPath("arch-test"); err == nil {
		// A file that is not executable: LookPath no longer finds it.
		stub := filepath.Join(t.TempDir(), "arch-test")
		if err := os.WriteFile(stub, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		hide += " && mount --bind " + stub + " " + p
	}
	refusedWithHidden(t, c, hide)
}

// refusedWithHidden runs the case in a private mount namespace where the
// shell command hide has hidden host files, as a build and with
// --dry-run: both are refused with the case's messages and nothing is
// written.
func refusedWithHidden(t *testing.T, c badSpecCase, hide string) {
	t.Helper()
	unshare := []string{"unshare", "--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		unshare = append(unshare, "--user", "--map-root-user")
	}
	dir, tmp := badSpecDir(t, c)
	run := func(args ...string) result {
		script := hide + ` && exec "$0" "$@"`
		cmd := exec.Command(unshare[0], append(append(unshare[1:], "sh", "-c", script, binary, "spec.vmdb"), args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "PATH=/usr/bin:/bin")
		r := runCommand(t, cmd)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
			}
		}
		return r
	}
	old := existingImage(t, filepath.Join(dir, "out.img"))
	r := run("--output", "out.img")
	checkNothingWritten(t, dir, tmp, c, old)
	if dry := run("--dry-run", "--output", "out.img"); dry.stderr != r.stderr {
		t.Errorf("--dry-run says otherwise:\n%s\nvs\n%s", dry.stderr, r.stderr)
	}
}

// TestOrdinaryUserLimits: an ordinary user's build is refused, before
// anything is written, when it names an id beyond its namespace's (root
// may use it), and when the user has no subordinate ids at all.
func TestOrdinaryUserLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs as other users; skipped with -short")
	}
	uid, gid := ordinaryUser(t)
	prog := userBinary(t)
	spec := badRooted + "  - create-file: /x\n    contents: x\n    uid: 70000\n"
	cases := []struct {
		name     string
		uid, gid int
		want     string
	}{
		{"id beyond the namespace", uid, gid, "spec.vmdb:16: create-file: uid 70000 is outside the ids an ordinary user's build has (0 to 65535"},
		// A uid without a passwd entry has no /etc/subuid range.
		{"no subordinate ids", 54321, 54321, "spec.vmdb:11: mkfs: this step runs in the build's user namespace, which cannot be made here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bc := badSpecCase{spec: spec}
			dir, tmp := badSpecDir(t, bc)
			old := existingImage(t, filepath.Join(dir, "out.img"))
			chownTree(t, dir, c.uid, c.gid)
			chownTree(t, tmp, c.uid, c.gid)
			for _, args := range [][]string{{"spec.vmdb", "--output", "out.img"}, {"spec.vmdb", "--dry-run", "--output", "out.img"}} {
				cmd := exec.Command("setpriv", append([]string{"--reuid=" + itoa(c.uid), "--regid=" + itoa(c.gid), "--clear-groups", prog}, args...)...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "HOME="+dir, "TMPDIR="+tmp)
				r := runCommand(t, cmd)
				if r.code != 1 || !strings.Contains(r.stderr, c.want) {
					t.Errorf("%v: exit %d, want 1 with %q:\n%s", args, r.code, c.want, r.stderr)
				}
			}
			checkNothingWritten(t, dir, tmp, bc, old)
		})
	}
	// Root's build has every id.
	dir := writeWorkDir(t, spec)
	if r := runVmdb2(t, dir, "", "--dry-run", "spec.vmdb", "--output", "out.img"); r.code != 0 {
		t.Errorf("refused for root: %s", r.stderr)
	}
}
