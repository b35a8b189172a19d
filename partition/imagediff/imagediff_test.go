package imagediff

import (
	"os"
	"path/filepath"
	"testing"
)

// image makes a sparse file of size bytes and writes each of writes into
// it (offset: bytes).
func image(t *testing.T, size int64, writes map[int64][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range writes {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestCompareSparse compares 64 GiB sparse images: the difference far
// into them is found, written zeros equal a hole, and a skipped range is
// taken as equal.
func TestCompareSparse(t *testing.T) {
	const size = 64 << 30
	far := int64(50<<30 + 12345)
	base := map[int64][]byte{0: []byte("table"), 1 << 30: make([]byte, 1<<20)}
	a := image(t, size, base)
	if d, err := Compare(a, image(t, size, base)); err != nil || d != nil {
		t.Fatalf("identical images: %v, %v", d, err)
	}
	zeros := map[int64][]byte{0: []byte("table"), far - 5: make([]byte, 4<<20)}
	if d, err := Compare(a, image(t, size, zeros)); err != nil || d != nil {
		t.Fatalf("written zeros against a hole: %v, %v", d, err)
	}
	other := map[int64][]byte{0: []byte("table"), far: []byte{7}}
	b := image(t, size, other)
	d, err := Compare(a, b)
	if err != nil || d == nil || d.Offset != far {
		t.Fatalf("Compare = %v, %v; want the difference at %d", d, err, far)
	}
	if d, err := Compare(b, a); err != nil || d == nil || d.Offset != far {
		t.Fatalf("Compare the other way = %v, %v; want the difference at %d", d, err, far)
	}
	if d, err := CompareSkipping(a, b, []Range{{far - 1, 2}}); err != nil || d != nil {
		t.Fatalf("skipped difference: %v, %v", d, err)
	}
	if d, err := Compare(a, image(t, size+512, base)); err != nil || d == nil || d.Offset != size {
		t.Fatalf("longer image: %v, %v; want the difference at %d", d, err, size)
	}
}
