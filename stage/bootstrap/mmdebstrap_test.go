package bootstrap_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap/basecache"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// TestMmdebstrapLeavesWhatDebootstrapLeaves: after mmdebstrap, nothing of
// its run is left (its apt.conf.d file, apt's auto-installed marks, the
// unsafe-io file), as after debootstrap, and /etc/machine-id, where there
// is one (not in minbase), is read-only.
func TestMmdebstrapLeavesWhatDebootstrapLeaves(t *testing.T) {
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
	var log bytes.Buffer
	err = bootstrap.Bootstrap(context.Background(), bootstrap.Options{
		Suite: "bookworm", Mirror: mirror, Variant: "minbase", Engine: bootstrap.EngineMmdebstrap,
		Target: target, CacheDir: pkgs, DeviceManifest: filepath.Join(work, "devices.json"),
		Stdout: &log, Stderr: &log,
	})
	if err != nil {
		t.Fatalf("Bootstrap: %v\n%s", err, tail(log.String(), 40))
	}
	for _, p := range []string{"etc/apt/apt.conf.d/99mmdebstrap", "var/lib/apt/extended_states", "etc/dpkg/dpkg.cfg.d/vmdb2-unsafe-io"} {
		if _, err := os.Lstat(filepath.Join(target, p)); err == nil {
			t.Errorf("%s is left in the target", p)
		}
	}
	if fi, err := os.Lstat(filepath.Join(target, "etc/machine-id")); err == nil && fi.Mode().Perm() != 0o444 {
		t.Errorf("etc/machine-id: mode %v, want 0444", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(target, "var/lib/dpkg/status")); err != nil {
		t.Error(err)
	}
}
