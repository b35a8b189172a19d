package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// allExports names one export of each format.
var allExports = []string{"out.qcow2", "out.vmdk", "out.vhdx", "out.img.zst", "out.img.xz", "out.img.gz", "out.bmap"}

// TestExportEveryFormat builds the file-steps image (no network) with one
// export of each format, as the ordinary user when run as root, and reads
// each back with the tool people use: qemu-img compare, zstd/xz/gzip -d,
// bmaptool copy (of the raw image and of each compressed one).
func TestExportEveryFormat(t *testing.T) {
	checkTools(t, "mke2fs", "qemu-img", "bmaptool", "zstd", "xz", "gzip")
	dir := writeWorkDir(t, fileStepsSpec)
	args := []string{"spec.vmdb", "--output", "out.img"}
	for _, e := range allExports {
		args = append(args, "--export", e)
	}
	env := []string{"SOURCE_DATE_EPOCH=1700000000", "TMPDIR=", "VMDB2_STAGE_DIR="}
	var r result
	if os.Geteuid() == 0 {
		uid, gid := ordinaryUser(t)
		chownTree(t, dir, uid, gid)
		r = runAs(t, uid, gid, dir, env, userBinary(t), args...)
	} else {
		r = runVmdb2Env(t, dir, env, args...)
	}
	if r.code != 0 {
		t.Fatalf("build with exports: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	image := filepath.Join(dir, "out.img")
	want, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	at := func(name string) string { return filepath.Join(dir, name) }
	for _, f := range []string{"qcow2", "vmdk", "vhdx"} {
		if out, err := exec.Command("qemu-img", "compare", "-q", "-f", "raw", "-F", f, image, at("out."+f)).CombinedOutput(); err != nil {
			t.Errorf("qemu-img compare out.img out.%s: %v %s", f, err, out)
		}
	}
	for name, tool := range map[string]string{"out.img.zst": "zstd", "out.img.xz": "xz", "out.img.gz": "gzip"} {
		got, err := exec.Command(tool, "-dc", at(name)).Output()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s -dc %s: %v, %d bytes, equal to the image: %v", tool, name, err, len(got), bytes.Equal(got, want))
		}
	}
	// bmaptool flashes the raw image or a compressed one with the map.
	for _, source := range []string{"out.img", "out.img.zst", "out.img.xz", "out.img.gz"} {
		copied := at("copy.img")
		if out, err := exec.Command("bmaptool", "copy", "--bmap", at("out.bmap"), at(source), copied).CombinedOutput(); err != nil {
			t.Errorf("bmaptool copy %s: %v\n%s", source, err, out)
		} else if got, _ := os.ReadFile(copied); !bytes.Equal(got, want) {
			t.Errorf("bmaptool copy %s did not reproduce the image", source)
		}
		os.Remove(copied)
	}
	if left, _ := filepath.Glob(at(".vmdb2-export-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestExportRefusedBeforeTheBuild: a name that cannot be exported to stops
// the command before anything is written.
func TestExportRefusedBeforeTheBuild(t *testing.T) {
	dir := t.TempDir()
	spec := "steps:\n  - mkimg: \"{{ output }}\"\n    size: 10M\n"
	os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(spec), 0o644)
	os.Mkdir(filepath.Join(dir, "dir.qcow2"), 0o755)
	for _, c := range []struct {
		export string
		code   int
		want   string
	}{
		{"out.raw", exitUsage, "argument --export: cannot tell the format of \"out.raw\" from its name: it must end with one of .qcow2"},
		{"out.img.gz/", exitUsage, "cannot tell the format"},
		{"dir.qcow2", exitFailure, "--export dir.qcow2: exists and is not a regular file"},
		{"nowhere/x.bmap", exitFailure, "--export nowhere/x.bmap: its directory nowhere"},
		{"/proc/x.img.xz", exitFailure, "cannot create files in /proc"},
		{"spec.vmdb.bmap", exitOK, ""},
	} {
		r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img", "--export", c.export)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("--export %s: exit %d, want %d with %q\n%s", c.export, r.code, c.code, c.want, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "out.img")); (err == nil) != (c.code == exitOK) {
			t.Errorf("--export %s: out.img exists: %v", c.export, err == nil)
		}
		os.Remove(filepath.Join(dir, "out.img"))
	}
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img", "--export", "out.img")
	if r.code != exitUsage {
		t.Errorf("--export out.img (the output): exit %d\n%s", r.code, r.stderr)
	}
	r = runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img.gz", "--export", "./out.img.gz")
	if r.code != exitFailure || !strings.Contains(r.stderr, "the same file as --output") {
		t.Errorf("--export of the output file: exit %d\n%s", r.code, r.stderr)
	}
	r = runVmdb2(t, dir, "", "spec.vmdb", "--dry-run", "--export", "dir.qcow2")
	if r.code != exitFailure || !strings.Contains(r.stderr, "not a regular file") {
		t.Errorf("--dry-run with a bad --export: exit %d\n%s", r.code, r.stderr)
	}
}

// TestFailedExportExitsNonZero: an export that fails after the build
// leaves no file of its own, keeps the image and exits 1. qemu-img is
// replaced by a program that writes part of its output and fails.
func TestFailedExportExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	spec := "steps:\n  - mkimg: \"{{ output }}\"\n    size: 10M\n"
	os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(spec), 0o644)
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	fake := "#!/bin/sh\nfor last; do :; done\necho partial > \"$last\"\necho 'qemu-img: disk full' >&2\nexit 1\n"
	os.WriteFile(filepath.Join(bin, "qemu-img"), []byte(fake), 0o755)
	r := runVmdb2Env(t, dir, []string{"PATH=" + bin + ":" + os.Getenv("PATH")},
		"spec.vmdb", "--output", "out.img", "--export", "out.img.zst", "--export", "out.qcow2")
	if r.code != exitFailure || !strings.Contains(r.stderr, "exporting out.qcow2") || !strings.Contains(r.stderr, "disk full") {
		t.Errorf("failed export: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "the image out.img is complete") {
		t.Errorf("the message does not say the image is kept:\n%s", r.stderr)
	}
	for name, want := range map[string]bool{"out.img": true, "out.img.zst": true, "out.qcow2": false} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".vmdb2-export-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestStoppedExportLeavesNoFile: SIGTERM while an export is written stops
// it (its program is killed with the build), removes what it wrote, keeps the image and
// exits 143.
func TestStoppedExportLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	spec := "steps:\n  - mkimg: \"{{ output }}\"\n    size: 10M\n"
	os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(spec), 0o644)
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	started, stopped := filepath.Join(dir, "started"), filepath.Join(dir, "stopped")
	fake := "#!/bin/sh\nfor last; do :; done\necho partial > \"$last\"\ntrap 'touch " + stopped + "; exit 143' TERM\necho $$ > " + started + ".tmp\nmv " + started + ".tmp " + started + "\nsleep 30 & wait $!\n"
	os.WriteFile(filepath.Join(bin, "qemu-img"), []byte(fake), 0o755)
	cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img", "--export", "out.qcow2")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	// A file, not a pipe: Wait must not wait for a program left holding it.
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if i == 200 {
			cmd.Process.Kill()
			t.Fatalf("the export did not start:\n%s", readFile(t, stderr.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	pidText, _ := os.ReadFile(started)
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatalf("the fake qemu-img's pid: %q", pidText)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if _, err := os.Stat(stopped); err != nil {
		t.Errorf("the export's program was not sent SIGTERM")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the export's program (pid %d) outlived the stopped build", pid)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitTerminated {
		t.Errorf("exit %d, want %d\n%s", code, exitTerminated, readFile(t, stderr.Name()))
	}
	if !strings.Contains(readFile(t, stderr.Name()), "the image out.img is complete") {
		t.Errorf("the message does not say the image is kept:\n%s", readFile(t, stderr.Name()))
	}
	if _, err := os.Stat(filepath.Join(dir, "out.img")); err != nil {
		t.Errorf("the image is gone: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*qcow2*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".vmdb2-export-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func readFile(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
