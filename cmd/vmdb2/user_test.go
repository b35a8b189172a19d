package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// testUser is the ordinary user the unprivileged tests build as. useradd
// gives it /etc/subuid and /etc/subgid ranges for the user namespace.
const testUser = "vmdb2-test"

// userAdd serialises ordinaryUser's lookup and useradd.
var userAdd sync.Mutex

// ordinaryUser makes sure testUser exists (creating it when running as
// root) and returns its uid and gid; not being root fails the test with
// the fix (testreq.NeedRoot).
func ordinaryUser(t *testing.T) (int, int) {
	t.Helper()
	testreq.NeedRoot(t, "to switch to the test user "+testUser)
	// Parallel tests may be the first to ask for the user.
	userAdd.Lock()
	defer userAdd.Unlock()
	u, err := user.Lookup(testUser)
	if err != nil {
		if out, err := exec.Command("useradd", "-m", testUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", testUser, err, out)
		}
		if u, err = user.Lookup(testUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// userBinary copies the vmdb2 binary where the ordinary user can run it.
func userBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vmdb2-userbin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "vmdb2")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// chownTree gives a directory tree to the ordinary user.
func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The test's temporary directories above dir are root's 0700: let the
	// user reach dir.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(p, fi.Mode().Perm()|0o011)
		}
	}
}

// runAs runs program as the ordinary user in dir with env added. HOME is
// dir, but XDG_CACHE_HOME (unless env sets it) is the user's one cache
// kept between tests and runs (userCacheHome), so that the user's builds
// share one package cache as root's do (/var/cache/vmdb2/apt-archives)
// instead of each downloading every package into an empty one.
func runAs(t *testing.T, uid, gid int, dir string, env []string, program string, args ...string) result {
	t.Helper()
	full := append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--init-groups", program}, args...)
	cmd := exec.Command("setpriv", full...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "HOME="+dir, "XDG_CACHE_HOME="+userCacheHome(t, uid, gid)), env...)
	return runCommand(t, cmd)
}

// userCacheHome is the XDG_CACHE_HOME of uid's builds in the tests:
// /var/cache/vmdb2-test/home/UID, owned by uid (the program's package
// cache is then its vmdb2/apt-archives), or a directory of its own under
// it for a test that runs in parallel (parallelForeign): a debootstrap
// holds the package cache's lock for its whole run, so two parallel
// builds sharing one cache would take turns.
func userCacheHome(t *testing.T, uid, gid int) string {
	t.Helper()
	sub := filepath.Join("home", strconv.Itoa(uid))
	if top := topTest(t); ownPackageCache(top) {
		sub = filepath.Join(sub, top)
	}
	return testCacheDir(t, sub, uid, gid)
}
