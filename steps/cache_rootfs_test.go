package steps

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCacheWanted: an existing tarball is kept unless force is set
// (vmdb2 0.28); a missing one is always written.
func TestCacheWanted(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.tar.gz")
	existing := filepath.Join(dir, "rootfs.tar.gz")
	os.WriteFile(existing, []byte("old"), 0o644)
	for _, c := range []struct {
		path  string
		force bool
		want  bool
	}{{missing, false, true}, {missing, true, true}, {existing, false, false}, {existing, true, true}} {
		if got, err := cacheWanted(c.path, c.force); err != nil || got != c.want {
			t.Errorf("cacheWanted(%s, force %v) = %v, %v; want %v", filepath.Base(c.path), c.force, got, err, c.want)
		}
	}
}
