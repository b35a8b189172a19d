package basecache

import "testing"

func TestKey(t *testing.T) {
	base, err := Spec{}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	k0, err := key(base)
	if err != nil {
		t.Skip(err) // debootstrap is not installed
	}
	same, _ := Spec{Suite: "bookworm", Variant: "minbase", Mirror: "http://deb.debian.org/debian"}.normalized()
	if k, _ := key(same); k != k0 {
		t.Errorf("explicit defaults change the key: %s, %s", k, k0)
	}
	a, _ := Spec{Packages: []string{"b", "a"}}.normalized()
	b, _ := Spec{Packages: []string{"a", "b"}}.normalized()
	ka, _ := key(a)
	kb, _ := key(b)
	if ka != kb {
		t.Error("the order of packages changes the key")
	}
	for _, s := range []Spec{
		{Mirror: "http://deb.debian.org/debian/"}, {Suite: "trixie"}, {Variant: "-"},
		{Packages: []string{"a"}}, {Components: []string{"main", "contrib"}}, {Arch: "i386"},
		{Engine: "mmdebstrap"},
	} {
		n, _ := s.normalized()
		if k, err := key(n); err == nil && (k == k0 || k == ka) {
			t.Errorf("%+v has the key of another spec", s)
		}
	}
}
