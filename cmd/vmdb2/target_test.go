package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// targetSpec makes a tiny target (static busybox as its only program) and
// runs shell and chroot steps in it.
const targetSpec = `steps:
  - mkimg: "{{ output }}"
    size: 64M
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
  - virtual-filesystems: /
  - shell: |
      mkdir -p "$ROOT/bin" "$ROOT/etc" "$ROOT/home"
      cp "$(command -v busybox)" "$ROOT/bin/busybox"
      ln -s busybox "$ROOT/bin/sh"
      echo "shell step ran as $(id -u)"
    root-fs: /
  - chroot: /
    shell: |
      PATH=/bin
      busybox id -u > /etc/uid-inside
      busybox mkdir /home/u1000
      busybox chown 1000:1000 /home/u1000
      busybox chmod 0750 /home/u1000
      busybox test -e /proc/self/status
      busybox test -c /dev/null
      echo escape > ../../../../host-canary || true
      busybox echo chroot step done
`

func TestShellAndChrootSteps(t *testing.T) {
	checkTools(t, "busybox", "debugfs", "e2fsck")
	os.Remove("/host-canary")
	check := func(dir string, r result) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("build failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "  shell| shell step ran as ") || !strings.Contains(r.stdout, "  chroot| chroot step done") {
			t.Errorf("command output not shown with -v:\n%s", r.stdout)
		}
		img := filepath.Join(dir, "out.img")
		const off = 1 << 20
		if got := debugfs(t, img, off, "cat /etc/uid-inside"); got != "0\n" {
			t.Errorf("uid inside the chroot: %q", got)
		}
		st := debugfs(t, img, off, "stat /home/u1000")
		if m := statRE.FindStringSubmatch(st); m == nil || m[1] != "0750" || m[2] != "1000" || m[3] != "1000" {
			t.Errorf("/home/u1000: %v", m)
		}
		if _, err := os.Stat("/host-canary"); err == nil {
			t.Errorf("the chroot step wrote /host-canary on the host")
		}
		if out, err := exec.Command(sbin("e2fsck"), "-fn", img+"?offset=1048576").CombinedOutput(); err != nil {
			t.Errorf("e2fsck: %v\n%s", err, out)
		}
	}
	dir := writeWorkDir(t, targetSpec)
	check(dir, runVmdb2(t, dir, "", "-v", "spec.vmdb", "--output", "out.img"))

	if os.Geteuid() == 0 {
		uid, gid := ordinaryUser(t)
		udir := writeWorkDir(t, targetSpec)
		chownTree(t, udir, uid, gid)
		check(udir, runAs(t, uid, gid, udir, []string{"TMPDIR=" + filepath.Join(udir, "tmp")}, userBinary(t), "-v", "spec.vmdb", "--output", "out.img"))
		noStageLeft(t, filepath.Join(udir, "tmp"))
	}
}

func TestFailingCommandShowsItsOutput(t *testing.T) {
	checkTools(t, "busybox")
	spec := strings.Replace(targetSpec, "      busybox echo chroot step done\n", "      echo first line\n      echo the reason it failed >&2\n      exit 3\n", 1)
	dir := writeWorkDir(t, spec)
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
	if r.code != 1 {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{"spec.vmdb:21: chroot: sh -ec 'PATH=/bin\nbusybox id -u > /etc/uid-inside\n", "exit 3' failed with exit status 3", "exit status 3", "the reason it failed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestResizeRootfs(t *testing.T) {
	checkTools(t, "busybox", "debugfs")
	spec := strings.Replace(targetSpec, "  - chroot: /\n", "  - create-dir: /usr/sbin\n  - create-dir: /etc/systemd/system\n  - create-file: /usr/sbin/parted\n    contents: fake\n  - resize-rootfs: /\n  - chroot: /\n", 1)
	dir := writeWorkDir(t, spec)
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
	if r.code != 0 {
		t.Fatalf("build failed: %s", r.stderr)
	}
	img := filepath.Join(dir, "out.img")
	if m := statRE.FindStringSubmatch(debugfs(t, img, 1<<20, "stat /usr/sbin/resize-rootfs")); m == nil || m[1] != "0755" {
		t.Errorf("script mode: %v", m)
	}
	if s := debugfs(t, img, 1<<20, "cat /usr/sbin/resize-rootfs"); !strings.Contains(s, "resize2fs -f") {
		t.Errorf("script: %s", s)
	}
	if s := debugfs(t, img, 1<<20, "cat /etc/systemd/system/resize-rootfs.service"); !strings.Contains(s, "RequiredBy=local-fs-pre.target") {
		t.Errorf("unit: %s", s)
	}
	link := debugfs(t, img, 1<<20, "stat /etc/systemd/system/systemd-remount-fs.service.requires/resize-rootfs.service")
	if !strings.Contains(link, `Fast link dest: "/etc/systemd/system/resize-rootfs.service"`) {
		t.Errorf("symlink: %s", link)
	}
	// Without parted in the image the step refuses, as vmdb2 does.
	dir = writeWorkDir(t, strings.Replace(targetSpec, "  - chroot: /\n", "  - resize-rootfs: /\n  - chroot: /\n", 1))
	if r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img"); r.code != 1 || !strings.Contains(r.stderr, "partprobe is not installed on image") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}
