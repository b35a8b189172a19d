package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interruptSpec runs a long command inside the target so that a signal can
// arrive while the namespace has processes.
var interruptSpec = strings.Replace(targetSpec, "      busybox echo chroot step done\n", "      busybox echo sleeping now\n      busybox sleep 4321\n", 1)

// processesWith lists host processes whose command line contains marker.
func processesWith(marker string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(data), "\x00", " ")
		if strings.Contains(cmd, marker) {
			found = append(found, e.Name()+": "+cmd)
		}
	}
	return found
}

func mountinfo(t *testing.T) string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestInterruptLeavesNothing sends SIGINT (and SIGTERM) at several points of
// a build: the exit status says which signal, and no stage, mount, loop
// device or process of the build is left.
func TestInterruptLeavesNothing(t *testing.T) {
	checkTools(t, "busybox", "mke2fs")
	before := mountinfo(t)
	loopsBefore, _ := exec.Command("losetup", "-a").Output()
	points := []struct {
		name  string
		sig   syscall.Signal
		after string        // send when this stdout line appears ("" = after delay)
		delay time.Duration // or after this long
		code  int
	}{
		{"SIGINT at once", syscall.SIGINT, "", 5 * time.Millisecond, 130},
		{"SIGINT during shell", syscall.SIGINT, "Step 7/8", 0, 130},
		{"SIGINT during chroot", syscall.SIGINT, "  chroot| sleeping now", 0, 130},
		{"SIGTERM during chroot", syscall.SIGTERM, "  chroot| sleeping now", 0, 143},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			dir := writeWorkDir(t, interruptSpec)
			tmp := filepath.Join(dir, "tmp")
			cmd := exec.Command(binary, "-v", "spec.vmdb", "--output", "out.img")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sent := make(chan struct{})
			var out strings.Builder
			go func() {
				sc := bufio.NewScanner(stdout)
				once := false
				for sc.Scan() {
					out.WriteString(sc.Text() + "\n")
					if !once && p.after != "" && strings.HasPrefix(sc.Text(), p.after) {
						once = true
						cmd.Process.Signal(p.sig)
						close(sent)
					}
				}
			}()
			if p.after == "" {
				time.Sleep(p.delay)
				cmd.Process.Signal(p.sig)
				close(sent)
			}
			select {
			case <-sent:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("the build never reached %q:\n%s", p.after, out.String())
			}
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			// Signalled before the handler was installed, the default action
			// kills the process: that too must leave nothing behind.
			if code != p.code && !(p.after == "" && code == -1) {
				t.Errorf("exit %d, want %d\n%s\n%s", code, p.code, out.String(), stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
			if procs := processesWith("sleep 4321"); len(procs) > 0 {
				t.Errorf("processes survived: %v", procs)
			}
			noStageLeft(t, tmp)
			if after := mountinfo(t); after != before {
				t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if loops, _ := exec.Command("losetup", "-a").Output(); string(loops) != string(loopsBefore) {
				t.Errorf("loop devices changed: %s", loops)
			}
		})
	}
}

// TestKilledBuildIsReclaimed: SIGKILL cannot be caught, so a killed build
// leaves its stage (with files of the namespace's ids); its processes die
// with it, and the next build removes that stage, also when its own stage
// goes elsewhere ($VMDB2_STAGE_DIR). Run as the ordinary user when the test
// runs as root, so that the stage holds files the user can only remove
// through the namespace.
func TestKilledBuildIsReclaimed(t *testing.T) {
	checkTools(t, "busybox", "mke2fs")
	dir := writeWorkDir(t, interruptSpec)
	tmp, other := filepath.Join(dir, "tmp"), filepath.Join(dir, "other")
	if err := os.WriteFile(filepath.Join(dir, "next.vmdb"), []byte(targetSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	prog, args := binary, []string{"-v", "--output", "out.img"}
	if os.Geteuid() == 0 {
		uid, gid := ordinaryUser(t)
		chownTree(t, dir, uid, gid)
		args = append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--init-groups", userBinary(t)}, args...)
		prog = "setpriv"
	}
	build := func(env []string, extra ...string) *exec.Cmd {
		extra = append([]string{}, extra...)
		cmd := exec.Command(prog, append(args, extra...)...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp, "HOME="+dir), env...)
		return cmd
	}
	cmd := build(nil, "spec.vmdb")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "  chroot| sleeping now") {
				reached <- true
			}
		}
		close(reached)
	}()
	select {
	case ok := <-reached:
		if !ok {
			t.Fatal("the build ended before its chroot step")
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the build never reached its chroot step")
	}
	// setpriv execs vmdb2: the pid is vmdb2's.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	time.Sleep(200 * time.Millisecond)
	if procs := processesWith("sleep 4321"); len(procs) > 0 {
		t.Errorf("processes survived SIGKILL of the build: %v", procs)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 1 || !strings.HasPrefix(left[0].Name(), "vmdb2-stage-") {
		t.Fatalf("after SIGKILL, want the build's stage left in TMPDIR, found %v", left)
	}
	stale := filepath.Join(tmp, left[0].Name())

	// The next build (the spec without the long sleep), whose stage goes
	// to $VMDB2_STAGE_DIR, removes the stale stage when it makes its own.
	out, err := build([]string{"VMDB2_STAGE_DIR=" + other}, "next.vmdb", "--log", "next.log").CombinedOutput()
	if err != nil {
		t.Fatalf("next build: %v\n%s", err, out)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "next.log"))
	if !strings.Contains(string(log), "removed "+stale+", the stage of a build that was killed") {
		t.Errorf("the next build's log does not say it removed %s:\n%s\n%s", stale, log, out)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("stale stage %s is still there", stale)
	}
	noStageLeft(t, other)
}
