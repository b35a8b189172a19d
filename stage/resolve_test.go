package stage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// plantedTree makes a tree whose directories are reached through every
// kind of symlink an image can hold, all aimed at canaryDir on the host.
func plantedTree(t *testing.T, canaryDir string) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "real", "dir"), 0o755))
	must(os.MkdirAll(filepath.Join(root, strings.TrimPrefix(canaryDir, "/")), 0o755))
	must(os.Symlink(canaryDir, filepath.Join(root, "abs")))
	must(os.Symlink(strings.Repeat("../", 30)+strings.TrimPrefix(canaryDir, "/"), filepath.Join(root, "rel")))
	must(os.Symlink("real/dir/../../abs", filepath.Join(root, "chain")))
	must(os.Symlink("real", filepath.Join(root, "parent")))
	must(os.Symlink("/real/dir", filepath.Join(root, "absinside")))
	return root
}

func TestResolveDirStaysInside(t *testing.T) {
	canaryDir, _, check := hostCanary(t)
	root := plantedTree(t, canaryDir)
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for p, want := range map[string]string{
		"/abs": canaryDir, "rel": canaryDir, "/chain": canaryDir,
		"/parent/dir": "/real/dir", "/absinside": "/real/dir", "../../real": "/real", "/": "/",
	} {
		got, err := r.ResolveDir(p)
		if err != nil || got != want {
			t.Errorf("ResolveDir(%q) = %q, %v; want %q (inside the tree)", p, got, err, want)
			continue
		}
		if err := r.CheckNoSymlinks(got); err != nil {
			t.Errorf("CheckNoSymlinks(%q) of a resolved path: %v", got, err)
		}
		// The host path built from the result is the image's directory.
		host := filepath.Join(root, got)
		if real, _ := filepath.EvalSymlinks(host); real != host && !(got == "/" && real == root) {
			t.Errorf("%s: host path %s leads to %s", p, host, real)
		}
	}
	for _, p := range []string{"/abs", "/rel", "/chain", "/parent/dir"} {
		if err := r.CheckNoSymlinks(p); !errors.Is(err, unix.ELOOP) {
			t.Errorf("CheckNoSymlinks(%q) = %v, want ELOOP", p, err)
		}
	}
	if _, err := r.ResolveDir("/nowhere"); err == nil {
		t.Errorf("ResolveDir of a missing directory succeeded")
	}
	check()
}

// TestSpecialFilesNeverBlock: a FIFO where a file step writes or reads a
// file is refused at once, not waited on.
func TestSpecialFilesNeverBlock(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/fifo", "etc/passwd"} {
		if err := syscall.Mkfifo(filepath.Join(root, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/fifo", filepath.Join(root, "etc", "link")); err != nil {
		t.Fatal(err)
	}
	me := Ownership{Mode: 0o644, UID: os.Getuid(), GID: os.Getgid()}
	done := make(chan []error, 1)
	go func() {
		r, err := OpenRoot(root)
		if err != nil {
			done <- []error{err}
			return
		}
		defer r.Close()
		var errs []error
		errs = append(errs, r.WriteFile("/etc/fifo", strings.NewReader("x"), me))
		errs = append(errs, r.WriteFile("/etc/link", strings.NewReader("x"), me))
		_, err = r.ReadFile("/etc/fifo")
		errs = append(errs, err)
		_, err = lookupID(r, "/etc/passwd", "root")
		errs = append(errs, err)
		done <- errs
	}()
	select {
	case errs := <-done:
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "FIFO") {
				t.Errorf("operation %d on a FIFO: %v, want a FIFO refusal", i, err)
			}
		}
	case <-time.After(time.Minute):
		t.Fatal("a file operation on a FIFO is still waiting after a minute")
	}
}

// TestRemoveNoiseStaysInside: noise files behind a symlink are left alone,
// wherever the link points; real ones go.
func TestRemoveNoiseStaysInside(t *testing.T) {
	canaryDir, _, check := hostCanary(t)
	hostLog := filepath.Join(canaryDir, "log")
	if err := os.Mkdir(hostLog, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostLog, "dpkg.log"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.Symlink(canaryDir, filepath.Join(root, "var")))
	must(os.WriteFile(filepath.Join(root, "etc", "passwd-"), []byte("old"), 0o600))
	must(os.Symlink(filepath.Join(canaryDir, "canary"), filepath.Join(root, "etc", "machine-id")))
	must(removeNoise(root))
	if _, err := os.Lstat(filepath.Join(root, "etc", "passwd-")); err == nil {
		t.Errorf("a real noise file was kept")
	}
	if data, err := os.ReadFile(filepath.Join(hostLog, "dpkg.log")); err != nil || string(data) != "host" {
		t.Errorf("the host's dpkg.log behind var -> %s was touched: %q %v", canaryDir, data, err)
	}
	entries, _ := os.ReadDir(canaryDir)
	if len(entries) != 2 {
		t.Errorf("canary directory changed: %v", entries)
	}
	// check() wants only the canary file; the log dir was ours.
	must(os.RemoveAll(hostLog))
	check()
}
