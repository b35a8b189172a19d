package lvm

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestScatterGather writes a file onto two ranges of an image and reads
// it back; all-zero blocks stay holes in the image.
func TestScatterGather(t *testing.T) {
	dir := t.TempDir()
	src, img, back := filepath.Join(dir, "lv"), filepath.Join(dir, "img"), filepath.Join(dir, "back")
	data := make([]byte, 6<<20)
	copy(data, "first segment")
	copy(data[5<<20:], "second segment")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(back, make([]byte, len(data)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	places := []Place{{img, 40 << 20, 4 << 20}, {img, 8 << 20, 2 << 20}}
	if err := Scatter(src, places); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(img)
	if !bytes.Equal(got[40<<20:44<<20], data[:4<<20]) || !bytes.Equal(got[8<<20:10<<20], data[4<<20:]) {
		t.Fatal("the segments do not hold the LV's bytes in order")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 4<<20 {
		t.Errorf("the image allocates %d bytes for two non-zero MiB blocks: holes were filled", used)
	}
	if err := Gather(back, places); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(back); !bytes.Equal(again, data) {
		t.Error("Gather did not give back what Scatter wrote")
	}
}
