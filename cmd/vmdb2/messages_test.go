package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailedFilesystemReportedOnce: a filesystem that mke2fs cannot build
// is one error, at the mount's teardown (the mkfs teardown does not build
// it a second time).
func TestFailedFilesystemReportedOnce(t *testing.T) {
	checkTools(t, "mke2fs")
	dir := writeWorkDir(t, strings.Replace(badRooted, "partition: /\n", "partition: /\n    options: -Z\n", 1)+"  - create-file: /x\n    contents: x\n")
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "invalid option"); n != 1 || !strings.Contains(r.stderr, "spec.vmdb:14: teardown of mount failed") {
		t.Errorf("mke2fs's error shown %d times, want once at the mount:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "1 teardown(s) failed") {
		t.Errorf("want one failed teardown:\n%s", r.stderr)
	}
}

// TestFullStage: when the stage's filesystem fills up (an 8 MiB tmpfs,
// mounted in a private mount namespace, as TMPDIR), the error says which
// filesystem, how much the stage may need and where it can go instead; as
// root and as the ordinary user.
func TestFullStage(t *testing.T) {
	checkTools(t, "mke2fs", "unshare")
	uid, gid := ordinaryUser(t)
	spec := badRooted + "  - copy-file: /big\n    src: big.bin\n"
	for _, who := range []string{"root", testUser} {
		t.Run(who, func(t *testing.T) {
			dir := writeWorkDir(t, spec)
			big := make([]byte, 20<<20)
			for i := range big {
				big[i] = byte(i*7 + i>>9)
			}
			if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
				t.Fatal(err)
			}
			small := filepath.Join(dir, "small")
			os.Mkdir(small, 0o755)
			prog := binary
			run := ""
			if who != "root" {
				chownTree(t, dir, uid, gid)
				prog = userBinary(t)
				run = "setpriv --reuid=" + itoa(uid) + " --regid=" + itoa(gid) + " --init-groups "
			}
			script := "mount -t tmpfs -o size=8m,mode=1777 tmpfs " + small + " && exec " + run + prog + " spec.vmdb --output out.img"
			cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "TMPDIR="+small, "HOME="+dir)
			r := runCommand(t, cmd)
			if r.code != 1 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range []string{"spec.vmdb:14: copy-file: ", "no space left on device",
				"the stage's filesystem is full (tmpfs on " + small + ", 8.0 MiB", "this build's stage may need up to 99.0 MiB",
				"set VMDB2_STAGE_DIR (or TMPDIR) to a directory on a filesystem with that much room"} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if n := strings.Count(r.stderr, "no space left"); n != 1 || strings.Contains(r.stderr, "write /big: write /big") {
				t.Errorf("the error is shown %d times:\n%s", n, r.stderr)
			}
		})
	}
}
