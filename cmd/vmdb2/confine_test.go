package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/canary"
)

// The tests here plant symlinks in the image where a build derives a host
// path (nested mount points, the trees filesystems are built from and
// moved out of, chroot roots, noise removal) and check that host canaries
// are neither changed nor read, as root and as the ordinary user.

// nestedSpec: GPT with boot and root, root filled by copy-dir from src
// (which holds the planted links), then boot mounted at DIRNAME.
const nestedSpec = `steps:
  - mkimg: "{{ output }}"
    size: 64M
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 20MiB
    tag: boot
  - mkpart: primary
    device: "{{ output }}"
    start: 20MiB
    end: 100%
    tag: root
  - mkfs: ext4
    partition: boot
  - mkfs: ext4
    partition: root
  - mount: root
  - copy-dir: /
    src: src
  - mount: boot
    mount-on: root
    dirname: DIRNAME
  - create-file: DIRNAME/inside
    contents: written inside
  - create-dir: /etc
  - fstab: root
`

// newCanary is a host directory that a build must never touch or read,
// with the files a planted link offers (boot/secret, log/dpkg.log,
// bin/keep), owned by the builder, so that a build of theirs that escaped
// could change it.
func newCanary(t *testing.T, uid, gid int) *canary.Host {
	t.Helper()
	c := canary.New(t, "boot/secret", "log/dpkg.log", "bin/keep")
	chownTree(t, c.Dir, uid, gid)
	c.Record(t)
	return c
}

// checkCanary fails when the canary changed or its secret is in the image.
func checkCanary(t *testing.T, c *canary.Host, img string) {
	t.Helper()
	c.Check(t)
	if data, err := os.ReadFile(img); err == nil {
		c.NotIn(t, "the image", data)
	}
}

// asBuilders runs fn as root and, when the tests run as root, as the
// ordinary user (uid, gid of the builder; -1 for root itself).
func asBuilders(t *testing.T, fn func(t *testing.T, uid, gid int)) {
	t.Run("root", func(t *testing.T) { fn(t, os.Getuid(), os.Getgid()) })
	if os.Geteuid() == 0 {
		t.Run("user", func(t *testing.T) {
			uid, gid := ordinaryUser(t)
			fn(t, uid, gid)
		})
	}
}

// buildAs runs the binary as uid:gid in dir (with a stage under dir/tmp,
// on the same filesystem as the canary, where a stray rename would move
// host files for real) and gives up after ten minutes.
func buildAs(t *testing.T, uid, gid int, dir string, env []string, args ...string) result {
	t.Helper()
	env = append(env, "TMPDIR="+filepath.Join(dir, "tmp"), "SOURCE_DATE_EPOCH=1700000000")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if uid == os.Getuid() {
		cmd = exec.CommandContext(ctx, binary, args...)
		cmd.Env = append(os.Environ(), env...)
	} else {
		chownTree(t, dir, uid, gid)
		full := append([]string{"--reuid=" + fmt.Sprint(uid), "--regid=" + fmt.Sprint(gid), "--init-groups", userBinary(t)}, args...)
		cmd = exec.CommandContext(ctx, "setpriv", full...)
		cmd.Env = append(append(os.Environ(), "HOME="+dir), env...)
	}
	cmd.Dir = dir
	r := runCommand(t, cmd)
	if ctx.Err() != nil {
		t.Fatalf("the build was still running after ten minutes:\n%s%s", r.stdout, r.stderr)
	}
	return r
}

// TestNestedMountSymlinks: a mount point that is a symlink in the image
// (absolute, relative, a ..-chain, a symlinked parent) is resolved inside
// the image; the host directory it names is neither read, changed nor
// emptied, and the nested filesystem gets the files written through it.
func TestNestedMountSymlinks(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs", "e2fsck")
	asBuilders(t, func(t *testing.T, uid, gid int) {
		c := newCanary(t, uid, gid)
		host := strings.TrimPrefix(c.Dir, "/")
		for _, tc := range []struct {
			name, dirname string
			links         map[string]string // in src: name -> target
		}{
			{"absolute", "/boot", map[string]string{"boot": c.Dir}},
			{"relative", "/boot", map[string]string{"boot": strings.Repeat("../", 25) + host}},
			{"chain", "/boot", map[string]string{"a": "b/../c", "b": "real", "c": c.Dir, "boot": "a/boot"}},
			{"parent", "/mnt/boot", map[string]string{"mnt": c.Dir}},
			{"noise", "/boot", map[string]string{"boot": c.Dir, "var": c.Dir, "bin": c.Dir + "/bin"}},
			{"dangling", "/boot", map[string]string{"boot": c.Dir + "/missing"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := writeWorkDir(t, strings.ReplaceAll(nestedSpec, "DIRNAME", tc.dirname))
				if err := os.Mkdir(filepath.Join(dir, "src", "real"), 0o755); err != nil {
					t.Fatal(err)
				}
				// The link targets exist in the image too, as they would
				// in a real tree; "dangling" points where it has nothing.
				if err := os.MkdirAll(filepath.Join(dir, "src", host, "boot"), 0o755); err != nil {
					t.Fatal(err)
				}
				for name, target := range tc.links {
					if err := os.Symlink(target, filepath.Join(dir, "src", name)); err != nil {
						t.Fatal(err)
					}
				}
				r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img")
				img := filepath.Join(dir, "out.img")
				checkCanary(t, c, img)
				if tc.name == "dangling" {
					if r.code != 1 || !strings.Contains(r.stderr, "symbolic link to a directory the image does not have") {
						t.Errorf("want a clear refusal of the dangling mount point; exit %d:\n%s", r.code, r.stderr)
					}
					return
				}
				if r.code != 0 {
					t.Fatalf("build failed (%d):\n%s%s", r.code, r.stdout, r.stderr)
				}
				if got := debugfs(t, img, 1<<20, "cat /inside"); got != "written inside" {
					t.Errorf("the boot filesystem lacks the file written through its mount point: %q", got)
				}
				if out, err := exec.Command(sbin("e2fsck"), "-fn", img+"?offset=1048576").CombinedOutput(); err != nil {
					t.Errorf("e2fsck of boot: %v\n%s", err, out)
				}
			})
		}
	})
}

// TestMountPointReplacedBySymlink: a step that replaces a mount point with
// a symlink to the host after the mount makes the build fail; nothing is
// built from, or moved out of, the host directory. (In the namespace the
// mount point is mounted, as on vmdb2's host: the step unmounts it first.)
func TestMountPointReplacedBySymlink(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs")
	asBuilders(t, func(t *testing.T, uid, gid int) {
		c := newCanary(t, uid, gid)
		spec := strings.ReplaceAll(nestedSpec, "DIRNAME", "/boot") + fmt.Sprintf(`  - shell: umount "$ROOT/boot" && rm -rf "$ROOT/boot" && ln -s %s "$ROOT/boot"
    root-fs: root
`, c.Dir)
		dir := writeWorkDir(t, spec)
		r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img")
		checkCanary(t, c, filepath.Join(dir, "out.img"))
		if r.code == 0 || !strings.Contains(r.stderr, "replaced by a symbolic link") {
			t.Errorf("want a failure naming the replaced mount point; exit %d:\n%s", r.code, r.stderr)
		}
	})
}

// TestChrootOnSymlinkedMount: chroot into a nested tag whose mount point is
// a symlink runs in the image's directory, not the host's.
func TestChrootOnSymlinkedMount(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs", "busybox")
	asBuilders(t, func(t *testing.T, uid, gid int) {
		c := newCanary(t, uid, gid)
		busybox, err := exec.LookPath("busybox")
		if err != nil {
			t.Fatal(err)
		}
		spec := strings.ReplaceAll(nestedSpec, "DIRNAME", "/boot") + fmt.Sprintf(`  - copy-file: /boot/bin/busybox
    src: %s
    perm: 0755
  - copy-file: /boot/bin/sh
    src: %s
    perm: 0755
  - chroot: boot
    shell: echo from chroot > /from-chroot
`, busybox, busybox)
		dir := writeWorkDir(t, spec)
		if err := os.MkdirAll(filepath.Join(dir, "src", c.Dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(c.Dir, filepath.Join(dir, "src", "boot")); err != nil {
			t.Fatal(err)
		}
		r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img")
		img := filepath.Join(dir, "out.img")
		checkCanary(t, c, img)
		if r.code != 0 {
			t.Fatalf("build failed (%d):\n%s%s", r.code, r.stdout, r.stderr)
		}
		if got := debugfs(t, img, 1<<20, "cat /from-chroot"); got != "from chroot\n" {
			t.Errorf("the chroot step's file is not in the boot filesystem: %q", got)
		}
	})
}

// TestFIFOInImage: a FIFO that a shell step puts where create-file writes
// is refused at once instead of hanging the build.
func TestFIFOInImage(t *testing.T) {
	checkTools(t, "mke2fs")
	asBuilders(t, func(t *testing.T, uid, gid int) {
		spec := strings.ReplaceAll(nestedSpec, "DIRNAME", "/boot") + `  - shell: mkdir -p "$ROOT/etc" && mkfifo "$ROOT/etc/motd"
    root-fs: root
  - create-file: /etc/motd
    contents: hello
`
		dir := writeWorkDir(t, spec)
		r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img")
		if r.code != 1 || !strings.Contains(r.stderr, "is a FIFO") {
			t.Errorf("want exit 1 naming the FIFO; exit %d:\n%s", r.code, r.stderr)
		}
	})
}
