package fstool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyRegion(t *testing.T) {
	dir := t.TempDir()
	const off, size = 4096, 1 << 20
	old := bytes.Repeat([]byte{0xEE}, off+size+off)
	dst := filepath.Join(dir, "img")
	os.WriteFile(dst, old, 0o644)
	src := filepath.Join(dir, "src")
	f, _ := os.Create(src)
	f.Truncate(size / 2)
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), size/2-4)
	f.Close()
	if err := CheckRegion(dst, off, size); err != nil {
		t.Fatal(err)
	}
	if CheckRegion(dst, off, size+off+1) == nil || CheckRegion(dst, -1, 10) == nil {
		t.Error("bad regions accepted")
	}
	d, _ := os.OpenFile(dst, os.O_RDWR, 0)
	s, _ := os.Open(src)
	if err := CopyRegion(d, off, size, s); err != nil {
		t.Fatal(err)
	}
	d.Close()
	got, _ := os.ReadFile(dst)
	want := append([]byte(nil), old...)
	copy(want[off:off+size], make([]byte, size))
	copy(want[off:], "head")
	copy(want[off+size/2-4:], "tail")
	if !bytes.Equal(got, want) {
		t.Error("region copy differs from the expected bytes")
	}
}
