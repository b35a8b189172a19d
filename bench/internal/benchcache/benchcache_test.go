package benchcache

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPath: the cache is in the user's cache directory and named by the
// spec's contents, so an edited spec gets another cache.
func TestPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", home)
	spec := filepath.Join(t.TempDir(), "bios.vmdb")
	write := func(s string) {
		if err := os.WriteFile(spec, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("steps: []\n")
	p1, err := Path(spec)
	if err != nil {
		t.Fatal(err)
	}
	if dir := filepath.Dir(p1); dir != filepath.Join(home, "vmdb2-bench") {
		t.Errorf("cache directory %s", dir)
	}
	if st, err := os.Stat(filepath.Dir(p1)); err != nil || !st.IsDir() {
		t.Errorf("cache directory not made: %v", err)
	}
	if !regexp.MustCompile(`^bios-[0-9a-f]{16}\.tar\.zst$`).MatchString(filepath.Base(p1)) {
		t.Errorf("cache name %s", filepath.Base(p1))
	}
	if again, _ := Path(spec); again != p1 {
		t.Errorf("same spec, another cache: %s, %s", p1, again)
	}
	write("steps: [] # edited\n")
	if p2, _ := Path(spec); p2 == p1 {
		t.Errorf("an edited spec kept the cache %s", p1)
	}
	if _, err := Path(filepath.Join(home, "missing.vmdb")); err == nil {
		t.Error("a missing spec gave a cache path")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	d := Default(filepath.Join(home, "missing.vmdb"))
	os.Stderr = stderr
	w.Close()
	said, _ := io.ReadAll(r)
	if d != filepath.Join(os.TempDir(), "vmdb2-bench-missing.tar.zst") {
		t.Errorf("fallback %s", d)
	}
	if !strings.Contains(string(said), "missing.vmdb") || !strings.Contains(string(said), d) {
		t.Errorf("the fallback was not explained: %q", said)
	}
}
