// Package asuser re-runs tests of a package as the ordinary user
// vmdb2-test (created with useradd, which gives it subordinate ids, when
// missing): an unprivileged build takes other paths (the user namespace,
// files owned by mapped ids) than one as root, and both are tested.
//
// It is used by tests only.
package asuser

import (
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// User is the ordinary user the tests run as.
const User = "vmdb2-test"

// Env is set in the environment of the re-run tests.
const Env = "VMDB2_AS_USER"

// Active reports whether this process is a re-run as User: tests then fail
// where they would skip for lack of namespaces.
func Active() bool { return os.Getenv(Env) != "" }

// Run compiles the test binary of the package in the current directory
// (the package under test) and runs the tests named in it as User through
// setpriv, with a clean environment. t fails unless every one passes
// without skipping. It skips with -short (compiling takes seconds); not
// being root fails it with the fix, or skips it under VMDB2_TEST_SKIP=root
// (see internal/testreq).
func Run(t *testing.T, tests ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles and runs the tests as " + User + ": skipped with -short")
	}
	testreq.NeedRoot(t, "to run the tests as "+User)
	ensureUser(t)
	dir, err := os.MkdirTemp("", "asuser-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pkg.test")
	if b, err := exec.Command(goTool(), "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, b)
	}
	home := "/home/" + User
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		home = dir
	}
	cmd := exec.Command("setpriv", "--reuid="+User, "--regid="+User, "--init-groups", "--",
		"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME="+home, "TMPDIR=/tmp",
		"USER="+User, Env+"=1",
		bin, "-test.v", "-test.count=1", "-test.timeout=20m", "-test.run", "^("+strings.Join(tests, "|")+")$")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("as %s:\n%s", User, out)
	if err != nil {
		t.Fatalf("tests as %s failed: %v", User, err)
	}
	for _, name := range tests {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass as %s", name, User)
		}
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Errorf("tests were skipped as %s", User)
	}
}

// ensureUser creates User with a home and subordinate ids if it does not
// exist, and checks that it has a range of 65536 ids for the namespace.
func ensureUser(t *testing.T) {
	t.Helper()
	if err := exec.Command("id", User).Run(); err != nil {
		if b, err := exec.Command("useradd", "-m", User).CombinedOutput(); err != nil {
			t.Fatalf("useradd -m %s: %v\n%s", User, err, b)
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for _, line := range strings.Split(string(b), "\n") {
			p := strings.Split(line, ":")
			if n, _ := strconv.Atoi(p[len(p)-1]); len(p) == 3 && p[0] == User && n >= 65536 {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("%s: user %s has no range of 65536 ids: add one with usermod --add-subuids/--add-subgids", f, User)
		}
	}
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
