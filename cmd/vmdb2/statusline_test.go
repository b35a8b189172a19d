package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal of cols columns by hand (/dev/ptmx):
// the master to read, the slave to give a program as its stdout.
func openPty(t *testing.T, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// runOnTerminal runs vmdb2 in dir with its stdout on a terminal of cols
// columns and returns what the terminal received and stderr.
func runOnTerminal(t *testing.T, dir string, cols uint16, args ...string) (int, string, string) {
	t.Helper()
	m, s := openPty(t, cols)
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = s, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(m) // ends with EIO once the program closed the terminal
		got <- b
	}()
	err := cmd.Wait()
	var out []byte
	select {
	case out = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal was not closed")
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, strings.ReplaceAll(string(out), "\r\n", "\n"), stderr.String()
}

// statusSpec is three echo steps (at lines 2, 4 and 5), the last failing
// in a second run.
const statusSpec = "steps:\n- echo: foo\n  teardown: foo_teardown\n- echo: a message long enough to be cut at the width of the terminal\n- echo: bar\n  teardown: bar_teardown\n"

// TestStatusLine: on a terminal, without -v, each step is shown on one line
// rewritten in place (\r and erase), "N/TOTAL kind file:line elapsed" and
// what it is doing, cut to the terminal's width, that ends as one summary
// line per step; the teardowns end as one line. An error on stderr comes
// with the line cleared.
func TestStatusLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(statusSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runOnTerminal(t, dir, 60, "spec.vmdb", "--output", "x.img")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		clearLine + "1/3 echo spec.vmdb:2 0s",
		clearLine + "1/3 echo spec.vmdb:2 0s: foo",
		clearLine + "1/3 echo spec.vmdb:2 done in 0.",
		clearLine + "2/3 echo spec.vmdb:4 0s: a message long enough to be cut a…" + clearLine,
		clearLine + "3/3 echo spec.vmdb:5 done in ",
		clearLine + "teardown 3/3 echo spec.vmdb:5 0s: bar_teardown",
		clearLine + "3 teardowns done in ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal lacks %q:\n%q", want, out)
		}
	}
	var summaries []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		parts := strings.Split(line, clearLine)
		summaries = append(summaries, parts[len(parts)-1])
	}
	if len(summaries) != 4 || !strings.HasPrefix(summaries[1], "2/3 echo spec.vmdb:4 done in ") {
		t.Errorf("want one line per step and one for the teardowns, the terminal shows:\n%s", strings.Join(summaries, "\n"))
	}
	for _, l := range strings.Split(out, clearLine) {
		if n := len([]rune(strings.TrimSuffix(l, "\n"))); n > 59 {
			t.Errorf("a line of %d characters on a terminal of 60 would wrap: %q", n, l)
		}
	}

	failing := strings.Replace(statusSpec, "- echo: bar\n", "- error: it broke\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runOnTerminal(t, dir, 60, "spec.vmdb", "--output", "x.img")
	if code != 1 || !strings.Contains(out, clearLine+"3/3 error spec.vmdb:5 failed after ") || !strings.Contains(stderr, "ERROR: spec.vmdb:5: error: ") {
		t.Errorf("a failing step: exit %d, terminal %q, stderr %q", code, out, stderr)
	}
}

// TestNoStatusLineOffTerminal: not on a terminal, without -v, stdout gets
// nothing, as vmdb2's (scripts rely on it); with -v, vmdb2's progress and
// no status line.
func TestNoStatusLineOffTerminal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(statusSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "x.img")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("to a pipe: exit %d, stdout %q, stderr %q; want nothing", r.code, r.stdout, r.stderr)
	}
	code, out, _ := runOnTerminal(t, dir, 80, "spec.vmdb", "--output", "x.img", "-v")
	if code != 0 || strings.Contains(out, clearLine) || !strings.Contains(out, "Step 1/3: echo foo (spec.vmdb:2)") {
		t.Errorf("with -v on a terminal: exit %d, %q", code, out)
	}
}

// TestActivity: what the status line says a step is doing, from the
// output lines of apt, debootstrap and mmdebstrap.
func TestActivity(t *testing.T) {
	for line, want := range map[string]string{
		"Get:12 http://deb.debian.org/debian bookworm/main amd64 libc6 amd64 2.36-9+deb12u10 [2,758 kB]": "fetching libc6",
		"Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]":                                 "fetching bookworm InRelease",
		"Unpacking libc6:amd64 (2.36-9+deb12u10) ...":                                                    "unpacking libc6:amd64",
		"Setting up linux-image-amd64 (6.1.140-1) ...":                                                   "setting up linux-image-amd64",
		"I: Retrieving libc6 2.36-9+deb12u10":                                                            "fetching libc6",
		"I: Unpacking libc6...":                                                                          "unpacking libc6",
		"I: Configuring systemd...":                                                                      "configuring systemd",
		"I: installing remaining packages inside the chroot...":                                          "installing remaining packages inside the chroot",
		"Reading package lists...":                                                                       "",
		"some output of a shell step":                                                                    "",
	} {
		if got := activity(line, false); got != want {
			t.Errorf("activity(%q) = %q, want %q", line, got, want)
		}
	}
	for d, want := range map[time.Duration]string{420 * time.Millisecond: "0.42s", 12 * time.Second: "12s", 187 * time.Second: "3m07s"} {
		if got := elapsed(d); got != want {
			t.Errorf("elapsed(%v) = %q, want %q", d, got, want)
		}
	}
}
