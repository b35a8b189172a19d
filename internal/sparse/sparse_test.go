package sparse

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sparseFile makes a file of size bytes with one byte of data at each of
// the offsets (4 KiB blocks apart at least, so each is its own extent).
func sparseFile(t *testing.T, size int64, at ...int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range at {
		if _, err := f.WriteAt([]byte{1}, off); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestExtents(t *testing.T) {
	const mib = 1 << 20
	f := sparseFile(t, 64*mib, 3*mib+5, 40*mib)
	es, err := Extents(f, 0, 64*mib)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("extents %v, want two", es)
	}
	for i, want := range []int64{3*mib + 5, 40 * mib} {
		if want < es[i].Off || want >= es[i].End() || es[i].Len > mib {
			t.Errorf("extent %d = %+v does not hold byte %d alone", i, es[i], want)
		}
	}
	// Clipped to the range asked for.
	es, err = Extents(f, 3*mib+5, 3*mib+6)
	if err != nil || !slices.Equal(es, []Extent{{3*mib + 5, 1}}) {
		t.Errorf("clipped extents %v, %v", es, err)
	}
	if es, _ := Extents(f, 41*mib, 64*mib); len(es) != 0 {
		t.Errorf("the tail hole has extents %v", es)
	}
	if !IsHole(f, 4*mib, 30*mib) || IsHole(f, 0, 4*mib) || !IsHole(f, 41*mib, mib) {
		t.Error("IsHole is wrong")
	}
}

func TestUnion(t *testing.T) {
	a := []Extent{{0, 10}, {50, 10}, {100, 1}}
	b := []Extent{{5, 10}, {60, 5}, {80, 1}}
	want := []Extent{{0, 15}, {50, 15}, {80, 1}, {100, 1}}
	if got := Union(a, b); !slices.Equal(got, want) {
		t.Errorf("Union = %v, want %v", got, want)
	}
	if got := Union(nil, b); !slices.Equal(got, b) {
		t.Errorf("Union(nil, b) = %v", got)
	}
}
