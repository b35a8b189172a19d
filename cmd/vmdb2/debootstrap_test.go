package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// needMirror fails the test when the Debian mirror cannot be reached.
func needMirror(t *testing.T) {
	t.Helper()
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Head("http://deb.debian.org/debian/dists/bookworm/Release")
	if err == nil {
		resp.Body.Close()
	} else {
		err = fmt.Errorf("the Debian mirror is unreachable (this test installs packages from it): %w", err)
	}
	testreq.Need(t, testreq.Network, err)
}

func checkDebianImage(t *testing.T, img string) {
	t.Helper()
	const off = 1 << 20
	if out, err := exec.Command(sbin("e2fsck"), "-fn", img+"?offset=1048576").CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	for _, c := range []struct{ path, mode, uid, gid string }{
		{"/etc/shadow", "0640", "0", "42"},
		{"/usr/bin/passwd", "04755", "0", "0"},
		{"/home/alice", "0755", "1234", "1234"},
		{"/dev/null", "0666", "0", "0"},
	} {
		st := debugfs(t, img, off, "stat "+c.path)
		if m := statRE.FindStringSubmatch(st); m == nil || m[1] != c.mode || m[2] != c.uid || m[3] != c.gid {
			t.Errorf("%s: %v, want %s %s:%s", c.path, m, c.mode, c.uid, c.gid)
		}
	}
}

// TestDebootstrapImage builds a bookworm image (debootstrap, apt, a chroot
// creating a user, fstab) as root and as an ordinary user. Both download
// through a proxy of the test's: as root, the one the host's apt
// configuration names (Acquire::http::Proxy, through APT_CONFIG), as the
// ordinary user the one http_proxy names; apt's downloads (mmdebstrap's and
// the apt step's) must go through it, and the image's /etc/apt must not
// remember it.
func TestDebootstrapImage(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs", "e2fsck")
	needMirror(t)
	parallelBuild(t)
	spec, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "debootstrap.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeWorkDir(t, string(spec))
	start := time.Now()
	cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img")
	cmd.Dir = dir
	aptProxy := startTestProxy(t)
	cmd.Env = append(withoutProxies(), "TMPDIR="+filepath.Join(dir, "tmp"), "APT_CONFIG="+hostAptProxyConfig(t, aptProxy))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build as root: %v\n%s", err, out)
	}
	t.Logf("built as uid %d in %v", os.Geteuid(), time.Since(start).Round(time.Second))
	checkDebianImage(t, filepath.Join(dir, "out.img"))
	aptProxy.checkWentThrough(t, "the build with the host's apt proxy")
	checkNoProxyInImage(t, filepath.Join(dir, "out.img"), 1<<20)
	noStageLeft(t, filepath.Join(dir, "tmp"))

	if os.Geteuid() != 0 {
		return
	}
	uid, gid := ordinaryUser(t)
	udir := writeWorkDir(t, string(spec))
	chownTree(t, udir, uid, gid)
	start = time.Now()
	envProxy := startTestProxy(t)
	r := runAs(t, uid, gid, udir, []string{"TMPDIR=" + filepath.Join(udir, "tmp"), "http_proxy=" + envProxy.url}, userBinary(t), "spec.vmdb", "--output", "out.img")
	if r.code != 0 {
		t.Fatalf("build as %s: exit %d\n%s", testUser, r.code, r.stderr)
	}
	t.Logf("built as %s in %v", testUser, time.Since(start).Round(time.Second))
	checkDebianImage(t, filepath.Join(udir, "out.img"))
	envProxy.checkWentThrough(t, "the build with http_proxy")
	checkNoProxyInImage(t, filepath.Join(udir, "out.img"), 1<<20)
	noStageLeft(t, filepath.Join(udir, "tmp"))
}
