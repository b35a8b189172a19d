package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// binary is the vmdb2 program built once for the tests that run it as a
// user would.
var binary string

func TestMain(m *testing.M) {
	setUpTurns()
	dir, err := os.MkdirTemp("", "vmdb2-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "vmdb2")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic("cannot build vmdb2: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

type result struct {
	code           int
	stdout, stderr string
}

// runVmdb2 runs the built binary in dir with args.
func runVmdb2(t *testing.T, dir string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	return runCommand(t, cmd)
}

// runCommand runs cmd and returns its exit status and output; a program
// that cannot be started fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running %s: %v", cmd.Path, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// followedBy is the manual's "stdout contains A followed by B": A occurs,
// and B occurs at or after the first occurrence of A.
func followedBy(s, a, b string) bool {
	i := strings.Index(s, a)
	return i >= 0 && strings.Contains(s[i:], b)
}

// copyTestdata copies acceptance specs into a fresh directory, so the
// test can see that nothing else appears there.
func copyTestdata(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAcceptanceHappy(t *testing.T) {
	dir := copyTestdata(t, "happy.vmdb")
	r := runVmdb2(t, dir, "", "-v", "happy.vmdb", "--output=happy.img")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, pair := range [][2]string{{"foo", "bar"}, {"bar", "bar_teardown"}, {"bar_teardown", "foo_teardown"}, {"foo_teardown", "All went fine."}} {
		if !followedBy(r.stdout, pair[0], pair[1]) {
			t.Errorf("stdout does not contain %q followed by %q:\n%s", pair[0], pair[1], r.stdout)
		}
	}
	// The old yarn harness also wanted stdout not to start with "foo".
	if strings.HasPrefix(r.stdout, "foo") || !strings.HasPrefix(r.stdout, "Load spec file happy.vmdb\n") {
		t.Errorf("stdout should start with the Load spec file line:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr not empty: %q", r.stderr)
	}
}

func TestAcceptanceJ2(t *testing.T) {
	dir := copyTestdata(t, "j2.vmdb")
	r := runVmdb2(t, dir, "", "-v", "j2.vmdb", "--output=foo.img")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !followedBy(r.stdout, "image is foo.img", "bar") {
		t.Errorf("stdout does not contain \"image is foo.img\" followed by \"bar\":\n%s", r.stdout)
	}
}

func TestAcceptanceUnhappy(t *testing.T) {
	dir := copyTestdata(t, "unhappy.vmdb")
	r := runVmdb2(t, dir, "", "-v", "unhappy.vmdb", "--output=unhappy.img")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, pair := range [][2]string{{"foo", "yikes"}, {"yikes", "WAT?!"}, {"WAT?!", "foo_teardown"}} {
		if !followedBy(r.stdout, pair[0], pair[1]) {
			t.Errorf("stdout does not contain %q followed by %q:\n%s", pair[0], pair[1], r.stdout)
		}
	}
	for _, absent := range []string{"bar_step", "bar_teardown"} {
		if strings.Contains(r.stdout, absent) {
			t.Errorf("stdout contains %q:\n%s", absent, r.stdout)
		}
	}
	if !followedBy(r.stdout, "yikes", "Something went wrong, cleaning up!") {
		t.Errorf("no cleaning-up message after the failure:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "ERROR: unhappy.vmdb:4:") {
		t.Errorf("stderr should name the failing step's line: %q", r.stderr)
	}
}

func TestQuietSuccessPrintsNothing(t *testing.T) {
	dir := copyTestdata(t, "happy.vmdb")
	r := runVmdb2(t, dir, "", "happy.vmdb", "--output", "x.img")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q; want 0 and silence", r.code, r.stdout, r.stderr)
	}
}

func TestSpecFromStdin(t *testing.T) {
	r := runVmdb2(t, t.TempDir(), "steps:\n- echo: from stdin\n", "-v", "-", "--output", "x.img")
	if r.code != 0 || !strings.Contains(r.stdout, "Load spec from stdin\n") || !strings.Contains(r.stdout, "from stdin") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestLogFile(t *testing.T) {
	dir := copyTestdata(t, "unhappy.vmdb")
	log := filepath.Join(dir, "build.log")
	if err := os.WriteFile(log, []byte("earlier line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runVmdb2(t, dir, "", "unhappy.vmdb", "--output", "x.img", "--log", log)
	if r.code != 1 {
		t.Fatalf("exit %d", r.code)
	}
	data, _ := os.ReadFile(log)
	text := string(data)
	if !strings.HasPrefix(text, "earlier line\n") {
		t.Errorf("log was not appended to:\n%s", text)
	}
	for _, want := range []string{" INFO Starting vmdb2 version ", " INFO foo\n", " INFO yikes\n", " INFO WAT?!\n", " ERROR An error occurred, exiting"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	// Timestamped lines: "YYYY-MM-DD HH:MM:SS LEVEL message".
	for _, line := range strings.Split(strings.TrimSpace(text), "\n")[1:] {
		if len(line) < 20 || line[4] != '-' || line[13] != ':' {
			t.Errorf("log line without timestamp: %q", line)
		}
	}
}

func TestCommandLine(t *testing.T) {
	dir := copyTestdata(t, "happy.vmdb")
	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		noStdout bool
	}{
		{name: "version", args: []string{"--version"}, code: 0, stdout: "0.26"},
		{name: "version abbreviated", args: []string{"--vers"}, code: 0, stdout: "0.26"},
		{name: "help", args: []string{"--help"}, code: 0, stdout: "Step kinds:"},
		{name: "help short", args: []string{"-h"}, code: 0, stdout: "--rootfs-tarball"},
		{name: "no spec", args: []string{"--output", "x.img"}, code: 2, stderr: "required: specfile"},
		{name: "two specs", args: []string{"happy.vmdb", "other.vmdb", "--output", "x.img"}, code: 2, stderr: "unrecognized arguments: other.vmdb"},
		{name: "unknown option", args: []string{"happy.vmdb", "--bogus"}, code: 2, stderr: "unrecognized arguments: --bogus"},
		{name: "ambiguous abbreviation", args: []string{"happy.vmdb", "--v"}, code: 2, stderr: "ambiguous option"},
		{name: "missing option value", args: []string{"happy.vmdb", "--output"}, code: 2, stderr: "expected one argument"},
		{name: "bad variable", args: []string{"happy.vmdb", "--output", "x", "--variable", "novalue"}, code: 2, stderr: "NAME=VALUE"},
		{name: "duplicate variable", args: []string{"happy.vmdb", "--output", "x", "--variable", "a=1", "--variable", "a=2"}, code: 2, stderr: `Duplicate definition of variable "a"`},
		{name: "no output or image", args: []string{"happy.vmdb"}, code: 1, stderr: "I don't know what to do, re-run with --help"},
		{name: "abbreviated output", args: []string{"-v", "happy.vmdb", "--out", "x.img"}, code: 0, stdout: "All went fine."},
		{name: "image instead of output", args: []string{"--image=x.img", "-v", "happy.vmdb"}, code: 0, stdout: "All went fine."},
		{name: "missing spec file", args: []string{"nosuch.vmdb", "--output", "x.img"}, code: 1, stderr: "nosuch.vmdb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runVmdb2(t, dir, "", c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, c.stdout) {
				t.Errorf("stdout lacks %q: %s", c.stdout, r.stdout)
			}
			if !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("stderr lacks %q: %s", c.stderr, r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
				t.Errorf("stack trace on stderr: %s", r.stderr)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the echo-only runs created files: %v", entries)
	}
}

func TestVariables(t *testing.T) {
	// {{ image }} with --output is refused (TestBadSpecs); an unset
	// --rootfs-tarball renders None as in vmdb2.
	spec := "steps:\n- echo: \"v={{ v }} w={{ w }} out={{ output }} tar={{ rootfs_tarball }}\"\n"
	r := runVmdb2(t, t.TempDir(), spec, "-v", "-", "--output", "o.img", "--variable", "v='a=b'", "--variable=w=\"x y\"")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := "v=a=b w=x y out=o.img tar=None"
	if !strings.Contains(r.stdout, want+"\n") {
		t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
	}
}

func TestArchVariable(t *testing.T) {
	spec := "steps:\n- echo: \"arch={{ arch }} tags=[{{ tags }}]\"\n"
	r := runVmdb2(t, t.TempDir(), spec, "-v", "-", "--output", "o.img")
	if r.code != 0 || !strings.Contains(r.stdout, "arch=amd64 tags=[]\n") && runtime.GOARCH == "amd64" {
		t.Errorf("exit %d: %s", r.code, r.stdout)
	}
	r = runVmdb2(t, t.TempDir(), spec, "-v", "-", "--output", "o.img", "--variable", "arch=arm64")
	if r.code != 0 || !strings.Contains(r.stdout, "arch=arm64 tags=[]\n") {
		t.Errorf("--variable arch does not override: %d %s", r.code, r.stdout)
	}
	if strings.Contains(r.stdout, "dpkg") {
		t.Errorf("dpkg is not needed: %s", r.stdout)
	}
}

func TestDryRunNeedsNoOutput(t *testing.T) {
	// Without --output the plan is printed, and what a real build would
	// refuse before its first step is refused (the tag / is never made).
	spec := "steps:\n- mkimg: \"{{ output }}\"\n  size: 4G\n- apt: install\n  tag: /\n  unless: rootfs_unpacked\n"
	dir := t.TempDir()
	r := runVmdb2(t, dir, spec, "--dry-run", "-")
	want := []string{"Plan for <stdin>: 2 steps", "step 1 (<stdin>:2): mkimg", `    size: "4G"`, "step 2 (<stdin>:4): apt",
		"    recommends: true  (default)", "    packages: []  (default)", `    unless: "rootfs_unpacked"`}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("plan lacks %q:\n%s", w, r.stdout)
		}
	}
	if r.code != 1 || !strings.Contains(r.stderr, "<stdin>:4: apt: Unknown tag: /") {
		t.Errorf("exit %d, want 1 with the unknown tag: %s", r.code, r.stderr)
	}
	r = runVmdb2(t, dir, "steps:\n- mkimg: \"{{ output }}\"\n  size: 4G\n- mklabel: gpt\n  device: \"{{ output }}\"\n", "--dry-run", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "step 2 (<stdin>:4): mklabel") {
		t.Errorf("exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("dry run created files")
	}
}
