package bootstrap_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap/basecache"
	"github.com/vmdb2-go/vmdb2/stage/rootfs"
	"github.com/vmdb2-go/vmdb2/stage/userns"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

const mirror = "http://deb.debian.org/debian"

func TestMain(m *testing.M) {
	userns.Init()
	os.Exit(m.Run())
}

var (
	netOnce sync.Once
	netErr  error
)

// needNetwork skips under -short; otherwise it fails unless namespaces
// work and the mirror answers.
func needNetwork(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Debian mirror and user namespaces: skipped with -short")
	}
	testreq.Need(t, testreq.Userns, userns.Available())
	netOnce.Do(func() {
		c := &http.Client{Timeout: 20 * time.Second}
		resp, err := c.Head(mirror + "/dists/bookworm/InRelease")
		if err != nil {
			netErr = err
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			netErr = fmt.Errorf("HEAD InRelease: %s", resp.Status)
		}
	})
	var err error
	if netErr != nil {
		err = fmt.Errorf("the Debian mirror %s is unreachable (%v): these tests install packages from it", mirror, netErr)
	}
	testreq.Need(t, testreq.Network, err)
}

// owner returns the host uid, gid and mode of path.
func owner(t *testing.T, path string) (uid, gid int, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), fi.Mode()
}

// checkOwner checks the owner of path as the namespace sees it.
func checkOwner(t *testing.T, path string, nsUID, nsGID int, perm fs.FileMode, setuid bool) {
	t.Helper()
	m, err := userns.Mapping()
	if err != nil {
		t.Fatal(err)
	}
	wantUID, _ := m.HostUID(nsUID)
	wantGID, _ := m.HostGID(nsGID)
	uid, gid, mode := owner(t, path)
	if uid != wantUID || gid != wantGID {
		t.Errorf("%s: host owner %d:%d, want %d:%d (namespace %d:%d, mapping %s)", path, uid, gid, wantUID, wantGID, nsUID, nsGID, m)
	}
	if mode.Perm() != perm {
		t.Errorf("%s: mode %v, want %v", path, mode.Perm(), perm)
	}
	if (mode&fs.ModeSetuid != 0) != setuid {
		t.Errorf("%s: setuid is %v, want %v", path, mode&fs.ModeSetuid != 0, setuid)
	}
}

// cacheState lists the .deb files of a package cache with size and mtime.
func cacheState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".deb") {
			m[e.Name()] = fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return m
}

// TestBootstrapAndApt installs a minbase bookworm, checks owners, modes and
// devices, then installs packages with apt in it and in a copy of the
// fresh tree; the second install must download nothing.
func TestBootstrapAndApt(t *testing.T) {
	needNetwork(t)
	pkgs, err := basecache.PackageCache()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	t.Cleanup(func() {
		if err := userns.RemoveAll(work); err != nil {
			t.Errorf("removing %s: %v", work, err)
		}
	})
	target := filepath.Join(work, "target")
	manifest := filepath.Join(work, "devices.json")
	var log bytes.Buffer
	start := time.Now()
	err = bootstrap.Bootstrap(context.Background(), bootstrap.Options{
		Suite: "bookworm", Mirror: mirror, Variant: "minbase",
		Target: target, CacheDir: pkgs, DeviceManifest: manifest,
		Stdout: &log, Stderr: &log,
	})
	if err != nil {
		t.Fatalf("Bootstrap: %v\n%s", err, tail(log.String(), 40))
	}
	t.Logf("bootstrap (minbase, cache %s) took %s", pkgs, time.Since(start).Round(time.Second))

	checkOwner(t, filepath.Join(target, "etc/shadow"), 0, 42, 0o640, false)
	checkOwner(t, filepath.Join(target, "usr/bin/passwd"), 0, 0, 0o755, true)
	if _, err := os.Stat(filepath.Join(target, "etc/debian_version")); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(filepath.Join(target, "etc/dpkg/dpkg.cfg.d/vmdb2-unsafe-io")); err == nil {
		t.Error("the dpkg unsafe-io file was left in the target")
	}
	if l, err := os.Readlink(filepath.Join(target, "dev/fd")); err != nil || l != "/proc/self/fd" {
		t.Errorf("dev/fd: %q, %v", l, err)
	}
	for _, d := range []string{"dev/pts", "dev/shm"} {
		if fi, err := os.Stat(filepath.Join(target, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	checkDevices(t, target, manifest)

	// A copy of the fresh tree: root copies its device nodes on the
	// host; an ordinary user has none and copies as the namespace's root.
	fresh := filepath.Join(work, "fresh")
	var cpErr bytes.Buffer
	if os.Geteuid() == 0 {
		cmd := exec.Command("cp", "-a", target, fresh)
		cmd.Stderr = &cpErr
		err = cmd.Run()
	} else {
		err = userns.Run(context.Background(), userns.Cmd{Argv: []string{"cp", "-a", target, fresh}, Dir: "/", Stderr: &cpErr})
	}
	if err != nil {
		t.Fatalf("copying the tree: %v\n%s", err, cpErr.String())
	}

	install := func(root string) string {
		t.Helper()
		var out bytes.Buffer
		start := time.Now()
		err := bootstrap.AptInstall(context.Background(), bootstrap.AptOptions{
			Root: root, Packages: []string{"hello", "less"}, Clean: true,
			CacheDir: pkgs, Stdout: &out, Stderr: &out,
		})
		if err != nil {
			t.Fatalf("AptInstall in %s: %v\n%s", root, err, tail(out.String(), 40))
		}
		t.Logf("apt install hello less in %s took %s", filepath.Base(root), time.Since(start).Round(time.Millisecond))
		for _, f := range []string{"usr/bin/hello", "usr/bin/less"} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("after AptInstall: %v", err)
			}
		}
		debs, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/archives/*.deb"))
		if len(debs) > 0 {
			t.Errorf("the target's own package cache holds %d files after AptInstall", len(debs))
		}
		if _, err := os.Stat(filepath.Join(root, "var/cache/apt/pkgcache.bin")); err == nil {
			t.Error("apt-get clean did not run")
		}
		return out.String()
	}
	install(target)
	before := cacheState(t, pkgs)
	if len(before) == 0 {
		t.Fatalf("the shared package cache %s holds no .deb files", pkgs)
	}
	out := install(fresh)
	if !strings.Contains(out, "Need to get 0 B") {
		t.Errorf("the second install downloaded packages:\n%s", tail(out, 30))
	}
	after := cacheState(t, pkgs)
	for name, st := range after {
		if before[name] != st {
			t.Errorf("the second install changed the shared cache: %s", name)
		}
	}
	checkOwner(t, filepath.Join(fresh, "etc/shadow"), 0, 42, 0o640, false)
}

// checkDevices checks that every standard device node is either in the
// tree (root) or in the manifest (ordinary user), and nothing else is at
// its path.
func checkDevices(t *testing.T, target, manifest string) {
	t.Helper()
	recorded, err := rootfs.ReadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	inManifest := map[string]rootfs.Device{}
	for _, d := range recorded {
		inManifest[d.Path] = d
	}
	for _, d := range bootstrap.StandardDevices(0) {
		p := filepath.Join(target, d.Path)
		var st syscall.Stat_t
		err := syscall.Lstat(p, &st)
		if err == nil {
			if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != uint64(d.Major<<8|d.Minor) {
				t.Errorf("%s exists but is not the device %d,%d (mode %o)", d.Path, d.Major, d.Minor, st.Mode)
			}
			if _, ok := inManifest[d.Path]; ok {
				t.Errorf("%s is both in the tree and in the manifest", d.Path)
			}
			continue
		}
		m, ok := inManifest[d.Path]
		if !ok {
			t.Errorf("%s is neither in the tree nor in the device manifest", d.Path)
			continue
		}
		if m.Type != "c" || m.Major != d.Major || m.Minor != d.Minor || m.Mode != "0666" || m.UID != 0 || m.GID != 0 {
			t.Errorf("manifest entry %+v", m)
		}
	}
	if os.Geteuid() == 0 && len(recorded) > 0 {
		t.Errorf("root recorded %d devices instead of creating them", len(recorded))
	}
	if os.Geteuid() != 0 && len(recorded) != len(bootstrap.StandardDevices(0)) {
		t.Errorf("the manifest has %d devices, want %d", len(recorded), len(bootstrap.StandardDevices(0)))
	}
}

// TestBaseCache asks for one base from two goroutines at once (separate
// lock-file descriptors, as two processes), then unpacks it.
func TestBaseCache(t *testing.T) {
	needNetwork(t)
	spec := basecache.Spec{Suite: "bookworm", Variant: "minbase"}
	var wg sync.WaitGroup
	paths := make([]string, 2)
	errs := make([]error, 2)
	var log bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return log.Write(b) })
	start := time.Now()
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = basecache.Tarball(context.Background(), spec, w)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("Tarball: %v\n%s", errs[i], tail(log.String(), 40))
		}
	}
	if paths[0] != paths[1] {
		t.Errorf("two paths for one spec: %s, %s", paths[0], paths[1])
	}
	if n := strings.Count(log.String(), "basecache: built"); n > 1 {
		t.Errorf("the base was built %d times", n)
	}
	t.Logf("base %s ready in %s", paths[0], time.Since(start).Round(time.Millisecond))

	start = time.Now()
	again, err := basecache.Tarball(context.Background(), spec, nil)
	if err != nil || again != paths[0] {
		t.Errorf("second Tarball: %s, %v", again, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a cached base took %s", d)
	}

	work := t.TempDir()
	t.Cleanup(func() { userns.RemoveAll(work) })
	target := filepath.Join(work, "root")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(work, "devices.json")
	if err := basecache.Unpack(context.Background(), spec, target, manifest, nil); err != nil {
		t.Fatal(err)
	}
	checkOwner(t, filepath.Join(target, "etc/shadow"), 0, 42, 0o640, false)
	checkDevices(t, target, manifest)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestAsOrdinaryUser re-runs the tests as the ordinary user vmdb2-test
// (created if missing, with subordinate ids), through setpriv.
func TestAsOrdinaryUser(t *testing.T) {
	needNetwork(t)
	testreq.NeedRoot(t, "to create the test user and run the tests as it")
	asuser.Run(t, "TestBootstrapAndApt", "TestMmdebstrapLeavesWhatDebootstrapLeaves", "TestBaseCache", "TestForeignArch", "TestCheckEmpty")
}
