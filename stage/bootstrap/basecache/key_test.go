package basecache

import (
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// mustKey returns key(s); t fails with the fix when the engine, whose
// version is part of the key, is not installed (skips under -short).
func mustKey(t testing.TB, s Spec) string {
	t.Helper()
	k, err := key(s)
	testreq.Need(t, testreq.Tools, err)
	return k
}

func TestKey(t *testing.T) {
	base, err := Spec{}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	k0 := mustKey(t, base)
	same, _ := Spec{Suite: "bookworm", Variant: "minbase", Mirror: "http://deb.debian.org/debian"}.normalized()
	if k := mustKey(t, same); k != k0 {
		t.Errorf("explicit defaults change the key: %s, %s", k, k0)
	}
	a, _ := Spec{Packages: []string{"b", "a"}}.normalized()
	b, _ := Spec{Packages: []string{"a", "b"}}.normalized()
	ka, kb := mustKey(t, a), mustKey(t, b)
	if ka != kb {
		t.Error("the order of packages changes the key")
	}
	for _, s := range []Spec{
		{Mirror: "http://deb.debian.org/debian/"}, {Suite: "trixie"}, {Variant: "-"},
		{Packages: []string{"a"}}, {Components: []string{"main", "contrib"}}, {Arch: "i386"},
		{Engine: "mmdebstrap"},
	} {
		n, _ := s.normalized()
		if k := mustKey(t, n); k == k0 || k == ka {
			t.Errorf("%+v has the key of another spec", s)
		}
	}
}

// TestKeyWithoutEngine: when the engine is missing, key fails and so does
// TestKey, with the fix (it was skipped).
func TestKeyWithoutEngine(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	base, err := Spec{}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	o := testreq.Probe(t, false, "", func(t testing.TB) { mustKey(t, base) })
	if !o.Failed || !strings.Contains(o.Message, "--version") || !strings.Contains(o.Message, "make deps") {
		t.Errorf("without %s: %s", base.Engine, o)
	}
	if o := testreq.Probe(t, true, "", func(t testing.TB) { mustKey(t, base) }); !o.Skipped {
		t.Errorf("without %s, -short: %s", base.Engine, o)
	}
}
