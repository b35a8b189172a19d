// Package testreq decides, for the project's tests, what happens when a
// test's prerequisite is missing: the host package, root, user
// namespaces, the Debian mirror, QEMU or a binfmt_misc handler. In the
// full suite the test fails with the error and the fix to apply; it is
// skipped only under `go test -short` or when its group is listed in the
// opt-out variable VMDB2_TEST_SKIP (comma-separated, e.g.
// VMDB2_TEST_SKIP=boot,foreign). A group listed there skips every test of
// the group, whether or not the host could run it; an unknown name fails
// the test, so that a typo cannot skip or run tests unnoticed.
//
// A test too long for make check's budget (60 minutes on a fresh 2-core
// machine) is named TestLong… and calls Long: it runs only when
// VMDB2_TEST_LONG=1, which `make check-long` sets.
//
// Probe runs a prerequisite check against a stand-in test with chosen
// settings, so that a fast test can show that the check fails, with its
// fix, when the prerequisite is missing.
package testreq

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Env is the opt-out variable: the groups whose tests are skipped.
const Env = "VMDB2_TEST_SKIP"

// Group names what a test needs from the host.
type Group string

// The groups. Their descriptions and fixes are in the groups table.
const (
	Boot    Group = "boot"
	Foreign Group = "foreign"
	Network Group = "network"
	Root    Group = "root"
	Userns  Group = "userns"
	Tools   Group = "tools"
)

// groups says, for each group, which tests it holds and the fix when its
// prerequisite is missing.
var groups = map[Group]struct{ what, fix string }{
	Boot: {"boot images in QEMU",
		"run `make deps` as root: it installs qemu-system-x86, ovmf, qemu-system-ppc, qemu-system-data, qemu-system-arm and qemu-efi-aarch64"},
	Foreign: {"build images of another architecture through qemu-user",
		"run `make deps` as root: it installs qemu-user-static and registers its ppc64le binfmt_misc handler"},
	Network: {"install packages from the Debian mirror",
		"give the host a resolver (/etc/resolv.conf) and access to http://deb.debian.org (http_proxy is honoured)"},
	Root: {"need root",
		"run the suite as root (`sudo make check`); the unprivileged paths are tested from there as the user vmdb2-test"},
	Userns: {"run programs in user namespaces",
		"let ordinary users create user namespaces (sysctl kernel.unprivileged_userns_clone=1 where it exists) and give them /etc/subuid and /etc/subgid ranges (useradd does; `make deps` installs uidmap)"},
	Tools: {"run host programs of .ci/host-packages",
		"run `make deps` as root: it installs the packages listed in .ci/host-packages"},
}

// settings are what decides between skip and fail.
type settings struct {
	short bool   // go test -short
	skip  string // the value of VMDB2_TEST_SKIP
}

// hasSettings is implemented by Probe's stand-in test.
type hasSettings interface{ settings() settings }

func current(t testing.TB) settings {
	if p, ok := t.(hasSettings); ok {
		return p.settings()
	}
	return settings{short: testing.Short(), skip: os.Getenv(Env)}
}

// optedOut reports whether s lists g, or an error for a name that is no
// group.
func (s settings) optedOut(g Group) (bool, error) {
	listed := false
	for _, name := range strings.Split(s.skip, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ok := groups[Group(name)]; !ok {
			return false, fmt.Errorf("%s=%q names the unknown group %q; the groups are %s", Env, s.skip, name, groupNames())
		}
		listed = listed || Group(name) == g
	}
	return listed, nil
}

func groupNames() string {
	var names []string
	for g := range groups {
		names = append(names, string(g))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Need marks t as a test of group g whose prerequisite is met when err is
// nil. It skips t when VMDB2_TEST_SKIP lists g, and when err is not nil
// under -short; otherwise a non-nil err fails t with the group's fix and
// the way to skip the group on purpose.
func Need(t testing.TB, g Group, err error) {
	t.Helper()
	info, ok := groups[g]
	if !ok {
		t.Fatalf("testreq: unknown group %q (the groups are %s)", g, groupNames())
	}
	s := current(t)
	out, bad := s.optedOut(g)
	switch {
	case bad != nil:
		t.Fatal(bad)
	case out:
		t.Skipf("skipped: %s lists %s (tests that %s)", Env, g, info.what)
	case err == nil:
	case s.short:
		t.Skipf("skipped with -short: %v", err)
	default:
		t.Fatalf("%v\nfix: %s\n(or skip the tests that %s on purpose: %s=%s)", err, info.fix, info.what, Env, g)
	}
}

// LongEnv is the opt-in variable of the tests that Long guards.
const LongEnv = "VMDB2_TEST_LONG"

// Long lets the rest of t run only when LongEnv is 1; otherwise it skips
// t, saying what the test costs (cost) and how to run it.
func Long(t testing.TB, cost string) {
	t.Helper()
	if os.Getenv(LongEnv) != "1" {
		t.Skipf("skipped: %s, beyond make check's budget; `make check-long` (%s=1) runs it", cost, LongEnv)
	}
}

// geteuid is os.Geteuid (replaced by this package's tests).
var geteuid = os.Geteuid

// NeedRoot is Need for the group Root: t needs root, for the reason why
// ("to switch to the test user").
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	var err error
	if uid := geteuid(); uid != 0 {
		err = fmt.Errorf("this test needs root %s, and runs as uid %d", why, uid)
	}
	Need(t, Root, err)
}

// NeedTools is Need for the group Tools: t runs the named host programs,
// looked up in $PATH, then in /usr/sbin and /sbin (which an ordinary
// user's $PATH often lacks).
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := LookTool(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	var err error
	if len(missing) > 0 {
		err = fmt.Errorf("%s not found in $PATH, /usr/sbin or /sbin", strings.Join(missing, ", "))
	}
	Need(t, Tools, err)
}

// LookTool finds a host program as NeedTools does and returns its path.
func LookTool(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, tool)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", tool, errNotFound)
}

var errNotFound = errors.New("not found in $PATH, /usr/sbin or /sbin")
