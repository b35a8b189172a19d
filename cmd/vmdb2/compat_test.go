package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCompatOption: --compat takes the versions whose images differ and
// refuses others as a usage error, before reading the spec.
func TestCompatOption(t *testing.T) {
	dir := t.TempDir()
	r := runVmdb2(t, dir, "", "--compat", "0.27", "--dry-run", "nosuch.vmdb")
	if r.code != 2 || !strings.Contains(r.stderr, `--compat "0.27"`) {
		t.Errorf("--compat 0.27: exit %d\n%s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte("steps:\n  - echo: hi\n"), 0o644)
	for _, v := range []string{"0.26", "0.40", "0.41"} {
		if r := runVmdb2(t, dir, "", "--compat="+v, "--dry-run", "spec.vmdb"); r.code != 0 {
			t.Errorf("--compat=%s: exit %d\n%s", v, r.code, r.stderr)
		}
	}
}

// compatSpec is the file steps' spec with a resolv.conf in the image, as
// debootstrap leaves one.
const compatSpec = fileStepsSpec + "  - create-file: /etc/resolv.conf\n    contents: nameserver 192.0.2.1\n"

// buildCompat builds spec with extra options and returns the image.
func buildCompat(t *testing.T, spec string, args ...string) string {
	t.Helper()
	dir := writeWorkDir(t, spec)
	cmd := exec.Command(binary, append([]string{"spec.vmdb", "--output", "out.img"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "TMPDIR="+filepath.Join(dir, "tmp"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %v: %v\n%s", args, err, out)
	}
	return filepath.Join(dir, "out.img")
}

// TestResolvConfDropped: as vmdb2 0.40+, the mount teardown leaves
// /etc/resolv.conf out of the image unless keep_resolvconf (0.41).
func TestResolvConfDropped(t *testing.T) {
	checkTools(t, "debugfs", "mke2fs")
	img := buildCompat(t, compatSpec)
	if got := debugfs(t, img, 65<<20, "cat /etc/resolv.conf"); got != "" {
		t.Errorf("0.41: /etc/resolv.conf is in the image: %q", got)
	}
	kept := strings.Replace(compatSpec, "  - mount: /\n", "  - mount: /\n    keep_resolvconf: true\n", 1)
	img = buildCompat(t, kept)
	if got := debugfs(t, img, 65<<20, "cat /etc/resolv.conf"); got != "nameserver 192.0.2.1" {
		t.Errorf("keep_resolvconf: /etc/resolv.conf is %q", got)
	}
}

// TestCompat026Image builds the file steps' image with --compat=0.26 and
// checks what 0.26 wrote differently from 0.41 (TestFileStepsImage and
// TestResolvConfDropped check 0.41's): fstab's errors=remount-ro lines in
// tag order, and /etc/resolv.conf kept.
func TestCompat026Image(t *testing.T) {
	checkTools(t, "debugfs", "mke2fs")
	img := buildCompat(t, compatSpec, "--compat=0.26")
	if got := debugfs(t, img, 65<<20, "cat /etc/resolv.conf"); got != "nameserver 192.0.2.1" {
		t.Errorf("0.26: /etc/resolv.conf is %q", got)
	}
	fstab := debugfs(t, img, 65<<20, "cat /etc/fstab")
	if !regexp.MustCompile(`^UUID=[0-9A-F]{4}-[0-9A-F]{4} /boot/efi vfat errors=remount-ro 0 1\nUUID=[0-9a-f-]{36} / ext4 errors=remount-ro 0 1\n$`).MatchString(fstab) {
		t.Errorf("0.26 fstab:\n%s", fstab)
	}
}
