package steps

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDropResolvConf: a regular /etc/resolv.conf, or a link to a file of
// the image, is removed; a dangling link (systemd-resolved's) stays, and
// a link is followed inside the tree, not on the host.
func TestDropResolvConf(t *testing.T) {
	tree := func(setup func(etc string)) (string, string) {
		dir := t.TempDir()
		etc := filepath.Join(dir, "etc")
		os.MkdirAll(etc, 0o755)
		setup(etc)
		if err := dropResolvConf(dir); err != nil {
			t.Fatal(err)
		}
		return dir, filepath.Join(etc, "resolv.conf")
	}
	_, p := tree(func(etc string) {
		os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 10.0.0.1\n"), 0o644)
	})
	if _, err := os.Lstat(p); err == nil {
		t.Error("a regular resolv.conf was kept")
	}
	_, p = tree(func(etc string) {
		os.WriteFile(filepath.Join(etc, "resolv.real"), []byte("x"), 0o644)
		os.Symlink("/etc/resolv.real", filepath.Join(etc, "resolv.conf"))
	})
	if _, err := os.Lstat(p); err == nil {
		t.Error("a link to the image's file was kept")
	}
	// /etc/hostname exists on the host, not in the tree: the link stays.
	_, p = tree(func(etc string) { os.Symlink("/etc/hostname", filepath.Join(etc, "resolv.conf")) })
	if _, err := os.Lstat(p); err != nil {
		t.Error("a link dangling in the image was removed")
	}
	if err := dropResolvConf(t.TempDir()); err != nil {
		t.Errorf("no /etc: %v", err)
	}
}
