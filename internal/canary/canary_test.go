package canary

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder notes the failures Check and NotIn report instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(string, ...any)     { r.failed = true }
func (r *recorder) Fatalf(f string, a ...any) { r.TB.Fatalf(f, a...) }

// TestTrapsLeadToTheCanary: each trap does lead a host-resolved write, or
// read, to the canary, and Check and NotIn notice.
func TestTrapsLeadToTheCanary(t *testing.T) {
	for _, trap := range Traps {
		t.Run(string(trap), func(t *testing.T) {
			h := New(t)
			root := t.TempDir()
			h.Plant(t, root, "etc/dir/file", trap)
			p := filepath.Join(root, "etc/dir/file")
			b, _ := os.ReadFile(p)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("written by the host"), 0o644)
			r := &recorder{TB: t}
			h.Check(r)
			h.NotIn(r, "read", b)
			if !r.failed {
				t.Errorf("a host read and write through %s went unnoticed", trap)
			}
		})
	}
}

func TestCheckQuiet(t *testing.T) {
	h := New(t)
	r := &recorder{TB: t}
	h.Check(r)
	h.NotIn(r, "nothing", []byte("other"))
	if r.failed {
		t.Error("Check or NotIn failed with nothing touched")
	}
}

func TestFIFO(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		fn   func(p string)
		want bool
	}{
		"read":   {func(p string) { os.ReadFile(p) }, true},
		"write":  {func(p string) { os.WriteFile(p, make([]byte, 1<<20), 0o644) }, true},
		"lstat":  {func(p string) { os.Lstat(p) }, false},
		"remove": {func(p string) { os.Remove(p) }, false},
	} {
		f := NewFIFO(t, filepath.Join(dir, name))
		if got := Run(func() { c.fn(f.Path) }, f); got != c.want {
			t.Errorf("%s: touched %v, want %v", name, got, c.want)
		}
	}
}
