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

// TestCompat026Image builds the file steps' image with --compat=0.26 and
// checks what 0.26 wrote differently from 0.41 (TestFileStepsImage checks
// 0.41's): fstab's errors=remount-ro lines in tag order.
func TestCompat026Image(t *testing.T) {
	checkTools(t, "debugfs", "mke2fs")
	dir := writeWorkDir(t, fileStepsSpec)
	cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img", "--compat=0.26")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "TMPDIR="+filepath.Join(dir, "tmp"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	img := filepath.Join(dir, "out.img")
	fstab := debugfs(t, img, 65<<20, "cat /etc/fstab")
	if !regexp.MustCompile(`^UUID=[0-9A-F]{4}-[0-9A-F]{4} /boot/efi vfat errors=remount-ro 0 1\nUUID=[0-9a-f-]{36} / ext4 errors=remount-ro 0 1\n$`).MatchString(fstab) {
		t.Errorf("0.26 fstab:\n%s", fstab)
	}
}
