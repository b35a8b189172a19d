package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// started is a build running in the background, its output collected.
type started struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	stderr strings.Builder
	done   chan struct{}
}

func (s *started) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String() + s.stderr.String()
}

// startUntil starts cmd and returns once a line of its standard output
// contains marker; the test fails if that never happens.
func startUntil(t *testing.T, cmd *exec.Cmd, marker string, timeout time.Duration) *started {
	t.Helper()
	s := &started{cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) {
		s.mu.Lock()
		s.stderr.Write(p)
		s.mu.Unlock()
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			s.mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if !once && strings.Contains(sc.Text(), marker) {
				once = true
				close(reached)
			}
		}
	}()
	select {
	case <-reached:
	case <-s.done:
		cmd.Wait()
		t.Fatalf("the build ended before %q:\n%s", marker, s.output())
	case <-time.After(timeout):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the build never reached %q:\n%s", marker, s.output())
	}
	return s
}

// wait waits for the build and returns its exit status (-1: killed).
func (s *started) wait() int {
	<-s.done
	err := s.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// killLeft kills the processes processesWith(marker) finds and reports
// them as survivors.
func killLeft(t *testing.T, marker string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	procs := processesWith(marker)
	for _, p := range procs {
		if pid, err := strconv.Atoi(strings.SplitN(p, ":", 2)[0]); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if len(procs) > 0 {
		t.Errorf("processes of the build survived it: %v", procs)
	}
}

// toolSpec builds an empty ext4 filesystem at the mkfs step's teardown.
const toolSpec = `steps:
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
`

// TestKilledRootBuildStopsHostTools SIGKILLs a root build while its
// mke2fs (a fake one that keeps appending to the image) runs on the host:
// the tool must die with the build, and the output stop growing.
func TestKilledRootBuildStopsHostTools(t *testing.T) {
	checkTools(t)
	if os.Geteuid() != 0 {
		t.Skip("as an ordinary user the tools run in the build's namespace")
	}
	dir := writeWorkDir(t, toolSpec)
	img := filepath.Join(dir, "out.img")
	fake := fakeTool(t, dir, "mke2fs", "echo fake mke2fs started\nwhile :; do echo grow >> "+img+"; sleep 0.05; done")
	cmd := exec.Command(binary, "-v", "spec.vmdb", "--output", "out.img")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"), "TMPDIR="+filepath.Join(dir, "tmp"))
	b := startUntil(t, cmd, "fake mke2fs started", 60*time.Second)
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.wait()
	killLeft(t, filepath.Join(fake, "mke2fs"))
	st1, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if st2, _ := os.Stat(img); st2.Size() != st1.Size() {
		t.Errorf("the output grew from %d to %d bytes after the build was killed", st1.Size(), st2.Size())
	}
}

// fakeTool writes a shell script named name that runs body into
// dir/fakebin and returns that directory, to put first in a build's PATH.
func fakeTool(t *testing.T, dir, name, body string) string {
	t.Helper()
	fake := filepath.Join(dir, "fakebin")
	if err := os.MkdirAll(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fake, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return fake
}

// TestKilledBuildStopsDecompressor SIGKILLs a build while the host's zstd
// program decodes its rootfs tarball (a fake zstd that never ends): the
// program must die with the build, as root and as an ordinary user (the
// decoding stays in the calling process either way).
func TestKilledBuildStopsDecompressor(t *testing.T) {
	checkTools(t, "mke2fs")
	for _, u := range builders(t) {
		t.Run(u.name, func(t *testing.T) {
			dir := writeWorkDir(t, toolSpec+"  - mount: /\n  - unpack-rootfs: /\n")
			started := filepath.Join(dir, "zstd-started")
			fake := fakeTool(t, dir, "zstd", "echo $$ > "+started+"\nwhile :; do sleep 0.05; done")
			// zstd's magic number, so that the tarball is taken for zstd
			tarball := append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 4096)...)
			if err := os.WriteFile(filepath.Join(dir, "rootfs.tar.zst"), tarball, 0o644); err != nil {
				t.Fatal(err)
			}
			u.own(dir)
			cmd := u.command(dir, []string{"PATH=" + fake + ":" + os.Getenv("PATH"), "TMPDIR=" + filepath.Join(dir, "tmp")},
				"-v", "spec.vmdb", "--output", "out.img", "--rootfs-tarball", "rootfs.tar.zst")
			b := startUntil(t, cmd, "", 60*time.Second)
			deadline := time.Now().Add(60 * time.Second)
			for {
				if _, err := os.Stat(started); err == nil {
					break
				}
				if time.Now().After(deadline) {
					b.cmd.Process.Kill()
					b.wait()
					t.Fatalf("the fake zstd did not start:\n%s", b.output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			b.cmd.Process.Signal(syscall.SIGKILL)
			b.wait()
			killLeft(t, filepath.Join(fake, "zstd"))
		})
	}
}

// TestHangupStopsCleanly: SIGHUP (a closed terminal, a dropped ssh
// session) stops a build as SIGTERM does: the teardowns run, the stage is
// removed, nothing of the build is left and the exit status is 129; as
// root and as an ordinary user.
func TestHangupStopsCleanly(t *testing.T) {
	checkTools(t, "busybox", "mke2fs")
	for _, u := range builders(t) {
		t.Run(u.name, func(t *testing.T) {
			dir := writeWorkDir(t, interruptSpec)
			u.own(dir)
			tmp := filepath.Join(dir, "tmp")
			cmd := u.command(dir, []string{"TMPDIR=" + tmp}, "-v", "spec.vmdb", "--output", "out.img")
			b := startUntil(t, cmd, "  chroot| sleeping now", 60*time.Second)
			b.cmd.Process.Signal(syscall.SIGHUP)
			code := b.wait()
			out := b.output()
			if code != 129 {
				t.Errorf("exit %d, want 129:\n%s", code, out)
			}
			if !followedBy(out, "Something went wrong, cleaning up!", "Teardown 5/8: mount /") {
				t.Errorf("the teardowns did not run:\n%s", out)
			}
			killLeft(t, "sleep 4321")
			noStageLeft(t, tmp)
		})
	}
}

// failSpec makes the output, then fails.
const failSpec = `steps:
  - mkimg: "{{ output }}"
    size: 16M
  - error: this build fails
    teardown: torn down
`

// TestIncompleteOutput: a failed or stopped build says that its image is
// incomplete and removes the --output file it created; an --output file
// that existed before the build, and an --image, are kept (and said to be
// incomplete).
func TestIncompleteOutput(t *testing.T) {
	checkTools(t)
	t.Run("created", func(t *testing.T) {
		dir := writeWorkDir(t, failSpec)
		r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
		if r.code != 1 || !strings.Contains(r.stderr, "removed the incomplete output out.img, which it had created") {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
		if _, err := os.Lstat(filepath.Join(dir, "out.img")); err == nil {
			t.Errorf("the incomplete output is still there")
		}
	})
	t.Run("existed", func(t *testing.T) {
		dir := writeWorkDir(t, failSpec)
		if err := os.WriteFile(filepath.Join(dir, "out.img"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
		if r.code != 1 || !strings.Contains(r.stderr, "out.img is incomplete (kept: it existed before the build)") {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
		if _, err := os.Lstat(filepath.Join(dir, "out.img")); err != nil {
			t.Errorf("a file that existed before the build was removed")
		}
	})
	t.Run("image", func(t *testing.T) {
		spec := "steps:\n  - mklabel: msdos\n    device: \"{{ image }}\"\n  - error: fails\n    teardown: torn down\n"
		dir := writeWorkDir(t, spec)
		if err := os.WriteFile(filepath.Join(dir, "disk.img"), make([]byte, 8<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runVmdb2(t, dir, "", "spec.vmdb", "--image", "disk.img")
		if r.code != 1 || !strings.Contains(r.stderr, "disk.img is incomplete (kept: it is --image)") {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
		if _, err := os.Lstat(filepath.Join(dir, "disk.img")); err != nil {
			t.Errorf("the --image was removed")
		}
	})
	t.Run("stopped", func(t *testing.T) {
		dir := writeWorkDir(t, toolSpec+"  - mount: /\n  - shell: |\n      echo waiting now; sleep 4322\n    root-fs: /\n")
		cmd := exec.Command(binary, "-v", "spec.vmdb", "--output", "out.img")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
		b := startUntil(t, cmd, "waiting now", 60*time.Second)
		b.cmd.Process.Signal(syscall.SIGTERM)
		if code := b.wait(); code != 143 || !strings.Contains(b.output(), "removed the incomplete output out.img") {
			t.Errorf("exit %d:\n%s", code, b.output())
		}
		if _, err := os.Lstat(filepath.Join(dir, "out.img")); err == nil {
			t.Errorf("the incomplete output of the stopped build is still there")
		}
		killLeft(t, "sleep 4322")
	})
}

// TestClosedOutputDoesNotKillBuild: the reader of a build's output goes
// away (a pipe to a dropped ssh session), then the build is stopped: it
// must still run its teardowns, remove its stage and exit 143, not die of
// SIGPIPE at its next line of output.
func TestClosedOutputDoesNotKillBuild(t *testing.T) {
	checkTools(t, "busybox", "mke2fs")
	dir := writeWorkDir(t, interruptSpec)
	tmp := filepath.Join(dir, "tmp")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-v", "spec.vmdb", "--output", "out.img", "--log", "build.log")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() && !strings.Contains(sc.Text(), "  chroot| sleeping now") {
	}
	r.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 143 {
		t.Errorf("exit %d (%v), want 143", code, err)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "build.log")); !strings.Contains(string(log), "Teardown 5/8: mount /") {
		t.Errorf("the teardowns did not run:\n%s", log)
	}
	killLeft(t, "sleep 4321")
	noStageLeft(t, tmp)
}
