package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/stage/bootstrap/basecache"
)

// baseTarball returns the cached bookworm minbase tarball with packages.
func baseTarball(t *testing.T, packages ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var log strings.Builder
	start := time.Now()
	tarball, err := basecache.Tarball(ctx, basecache.Spec{Suite: "bookworm", Variant: "minbase", Packages: packages}, &log)
	if err != nil {
		t.Fatalf("base tarball: %v\n%s", err, log.String())
	}
	t.Logf("base tarball %s ready in %v", tarball, time.Since(start).Round(time.Second))
	return tarball
}

// raspiLayoutSpec: a root and a vfat /boot/firmware, as Debian's Raspberry
// Pi images have, whose steps check that the target sees them mounted.
const raspiLayoutSpec = `steps:
  - mkimg: "{{ output }}"
    size: 1G
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    fs-type: fat32
    device: "{{ output }}"
    start: 4MiB
    end: 64MiB
    tag: firmware
  - mkpart: primary
    device: "{{ output }}"
    start: 64MiB
    end: 100%
    tag: root
  - mkfs: vfat
    partition: firmware
    label: RASPIFIRM
  - mkfs: ext4
    partition: root
    label: RASPIROOT
  - mount: root
  - unpack-rootfs: root
  - mount: firmware
    mount-on: root
    dirname: /boot/firmware
  - chroot: root
    shell: |
      mountpoint /boot/firmware
      findmnt /boot/firmware
      grep ' /boot/firmware ' /proc/self/mountinfo
      if findmnt -n -o SOURCE /; then exit 1; fi
      mountpoint / || true
      echo checked > /boot/firmware/checked
  - shell: |
      mountpoint "$ROOT"
      mountpoint "$ROOT/boot/firmware"
      grep -c " $ROOT/boot/firmware " /proc/self/mountinfo
    root-fs: root
`

// TestMountedTagsLookMounted: inside the build's namespace a nested tag's
// directory is a mount point to the target's own util-linux (mountpoint,
// findmnt) and in /proc/self/mountinfo, in a chroot and a shell step, as
// root and as the ordinary user; in the chroot "/" is not, so findmnt
// names no source for it (raspi-firmware would write the build host's
// device into cmdline.txt); the host's mounts do not change, and the
// file written there lands in the vfat filesystem.
func TestMountedTagsLookMounted(t *testing.T) {
	checkTools(t, "mke2fs", "mtype")
	tarball := baseTarball(t)
	before := mountinfo(t)
	asBuilders(t, func(t *testing.T, uid, gid int) {
		dir := writeWorkDir(t, raspiLayoutSpec)
		r := buildAs(t, uid, gid, dir, nil, "-v", "spec.vmdb", "--output", "out.img", "--rootfs-tarball", tarball)
		if r.code != 0 {
			t.Fatalf("build failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"  chroot| /boot/firmware is a mountpoint", "  chroot| TARGET", "  chroot| / is not a mountpoint",
			"/boot/firmware is a mountpoint\n", "  shell| 1\n"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("-v output lacks %q:\n%s", want, r.stdout)
			}
		}
		out, err := exec.Command("mtype", "-i", filepath.Join(dir, "out.img")+"@@4M", "::checked").CombinedOutput()
		if err != nil || string(out) != "checked\n" {
			t.Errorf("the file written to /boot/firmware in the vfat filesystem: %q (%v)", out, err)
		}
		noStageLeft(t, filepath.Join(dir, "tmp"))
	})
	if after := mountinfo(t); after != before {
		t.Errorf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// keptMountsSpec: shell steps that mount proc and a tmpfs in the tree, use
// them in the next shell and chroot steps and unmount them in a later one,
// as a Rock64 spec does around flash-kernel.
var keptMountsSpec = targetSpec + `  - shell: |
      mkdir -p "$ROOT/proc" "$ROOT/mnt/scratch"
      mount -t proc proc "$ROOT/proc"
      mount -t tmpfs -o mode=0755 scratch "$ROOT/mnt/scratch"
      echo from-step-one > "$ROOT/mnt/scratch/note"
    root-fs: /
  - shell: |
      test -e "$ROOT/proc/self/status"
      echo "kept proc: $(chroot "$ROOT" /bin/busybox cat /proc/self/comm)"
      echo "kept tmpfs: $(cat "$ROOT/mnt/scratch/note")"
    root-fs: /
  - chroot: /
    shell: |
      PATH=/bin
      busybox grep -c ' /mnt/scratch ' /proc/self/mountinfo
      busybox echo "in chroot: $(busybox cat /mnt/scratch/note)"
  - shell: |
      umount "$ROOT/proc"
      umount "$ROOT/mnt/scratch"
      test ! -e "$ROOT/proc/self"
      test ! -e "$ROOT/mnt/scratch/note"
      echo unmounted
    root-fs: /
  - shell: |
      if mountpoint -q "$ROOT/proc" || mountpoint -q "$ROOT/mnt/scratch"; then echo still mounted; exit 1; fi
      echo "still unmounted"
    root-fs: /
`

// TestShellMountsPersist: mounts a shell step makes in the tree are there
// in the later shell and chroot steps until a shell step unmounts them,
// as root and as the ordinary user; the host's mounts never change and
// the tmpfs's file is not in the image.
func TestShellMountsPersist(t *testing.T) {
	checkTools(t, "busybox", "mke2fs", "debugfs")
	before := mountinfo(t)
	asBuilders(t, func(t *testing.T, uid, gid int) {
		dir := writeWorkDir(t, keptMountsSpec)
		r := buildAs(t, uid, gid, dir, nil, "-v", "spec.vmdb", "--output", "out.img")
		if r.code != 0 {
			t.Fatalf("build failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"  shell| kept proc: busybox\n", "  shell| kept tmpfs: from-step-one\n",
			"  chroot| 1\n", "  chroot| in chroot: from-step-one\n", "  shell| unmounted\n", "  shell| still unmounted\n"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("-v output lacks %q:\n%s", want, r.stdout)
			}
		}
		if got := debugfs(t, filepath.Join(dir, "out.img"), 1<<20, "ls /mnt/scratch"); strings.Contains(got, "note") {
			t.Errorf("the tmpfs's file is in the image: %s", got)
		}
		noStageLeft(t, filepath.Join(dir, "tmp"))
	})
	if after := mountinfo(t); after != before {
		t.Errorf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestShellMountsFailedAndInterrupted: a build that fails, or is stopped
// by SIGINT, with mounts kept from a shell step leaves no mount, process
// or stage behind.
func TestShellMountsFailedAndInterrupted(t *testing.T) {
	checkTools(t, "busybox", "mke2fs")
	mounting := targetSpec + `  - shell: |
      mkdir -p "$ROOT/proc"
      mount -t proc proc "$ROOT/proc"
      mount -t tmpfs scratch "$ROOT/home"
      echo mounted
    root-fs: /
`
	before := mountinfo(t)
	asBuilders(t, func(t *testing.T, uid, gid int) {
		t.Run("failed", func(t *testing.T) {
			dir := writeWorkDir(t, mounting+"  - shell: exit 7\n    root-fs: /\n")
			r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img")
			if r.code == 0 {
				t.Fatalf("the failing build succeeded:\n%s", r.stdout)
			}
			noStageLeft(t, filepath.Join(dir, "tmp"))
		})
		t.Run("SIGINT", func(t *testing.T) {
			dir := writeWorkDir(t, mounting+"  - shell: echo waiting; sleep 4322\n    root-fs: /\n")
			code, out := interruptAt(t, uid, gid, dir, "  shell| waiting")
			if code != 130 {
				t.Errorf("exit %d, want 130:\n%s", code, out)
			}
			time.Sleep(100 * time.Millisecond)
			if procs := processesWith("sleep 4322"); len(procs) > 0 {
				t.Errorf("processes survived: %v", procs)
			}
			noStageLeft(t, filepath.Join(dir, "tmp"))
		})
	})
	if after := mountinfo(t); after != before {
		t.Errorf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// interruptAt runs a -v build as uid:gid in dir and sends it SIGINT when
// a line of its output starts with marker; it returns the exit status
// and the output.
func interruptAt(t *testing.T, uid, gid int, dir, marker string) (int, string) {
	t.Helper()
	args := []string{"-v", "spec.vmdb", "--output", "out.img"}
	cmd := exec.Command(binary, args...)
	if uid != os.Getuid() {
		chownTree(t, dir, uid, gid)
		full := append([]string{"--reuid=" + fmt.Sprint(uid), "--regid=" + fmt.Sprint(gid), "--init-groups", userBinary(t)}, args...)
		cmd = exec.Command("setpriv", full...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"), "HOME="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	timer := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	sent := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !sent && strings.HasPrefix(sc.Text(), marker) {
			sent = true
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err = cmd.Wait()
	if !sent {
		t.Fatalf("the build never printed %q:\n%s", marker, out.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, out.String()
}

// TestMountPointReplacedByLink: a shell step that moves the directory
// holding a nested tag's mount point away and puts a link to the host (or
// to /) in its place makes the next step fail before it runs; the host
// directory is neither mounted over nor written, as root and as the
// ordinary user.
func TestMountPointReplacedByLink(t *testing.T) {
	checkTools(t, "busybox", "mke2fs", "debugfs")
	before := mountinfo(t)
	asBuilders(t, func(t *testing.T, uid, gid int) {
		for name, target := range map[string]string{"host": "", "root": "/"} {
			t.Run(name, func(t *testing.T) {
				c := newCanary(t, uid, gid)
				if target == "" {
					target = c.Dir
				}
				spec := strings.Replace(nestedSpec, "  - create-file: DIRNAME/inside\n    contents: written inside\n", "", 1)
				spec = strings.ReplaceAll(spec, "DIRNAME", "/boot/firmware") + `  - shell: |
      mv "$ROOT/boot" "$ROOT/boot.moved"
      ln -s ` + target + ` "$ROOT/boot"
    root-fs: root
  - shell: echo planted > "$ROOT/boot/firmware/planted"
    root-fs: root
`
				dir := writeWorkDir(t, spec)
				if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
					t.Fatal(err)
				}
				r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "out.img")
				if r.code == 0 || !strings.Contains(r.stderr, "symbolic link") {
					t.Errorf("exit %d, want a failure naming the link:\n%s%s", r.code, r.stdout, r.stderr)
				}
				checkCanary(t, c, filepath.Join(dir, "out.img"))
				noStageLeft(t, filepath.Join(dir, "tmp"))
			})
		}
	})
	if after := mountinfo(t); after != before {
		t.Errorf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestBootLoaderAtOffsetSurvives: what a shell step writes into the raw
// image outside the partitions (a boot loader at sector 64, as board specs
// dd it) is still there after the filesystems are built.
func TestBootLoaderAtOffsetSurvives(t *testing.T) {
	checkTools(t, "mke2fs")
	const mark = "BOOT-LOADER-AT-SECTOR-64"
	for _, label := range []string{"msdos", "gpt"} {
		t.Run(label, func(t *testing.T) {
			spec := `steps:
  - mkimg: "{{ output }}"
    size: 64M
  - mklabel: ` + label + `
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 16MiB
    end: 100%
    tag: root
  - mkfs: ext4
    partition: root
  - mount: root
  - shell: |
      printf ` + mark + ` | dd of="{{ output }}" conv=notrunc seek=64 bs=512 status=none
      printf ` + mark + ` | dd of="{{ output }}" conv=notrunc seek=32767 bs=512 status=none
    root-fs: root
  - create-dir: /etc
  - create-file: /etc/hostname
    contents: board
`
			dir := writeWorkDir(t, spec)
			r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
			if r.code != 0 {
				t.Fatalf("build failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			img, err := os.ReadFile(filepath.Join(dir, "out.img"))
			if err != nil {
				t.Fatal(err)
			}
			for _, sector := range []int{64, 32767} {
				if got := string(img[sector*512 : sector*512+len(mark)]); got != mark {
					t.Errorf("sector %d: %q, want %q", sector, got, mark)
				}
			}
		})
	}
}
