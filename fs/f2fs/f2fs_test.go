package f2fs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/internal/fstest"
)

func TestArgs(t *testing.T) {
	mkfs, sload := Args("src", "s", Options{Label: "f", Time: time.Unix(5, 0), ExtraArgs: []string{"-O", "extra_attr"}})
	if got, want := strings.Join(mkfs, " "), "mkfs.f2fs -f -q -t 0 -l f -r -T 5 -O extra_attr s"; got != want {
		t.Errorf("mkfs: got %s, want %s", got, want)
	}
	if got, want := strings.Join(sload, " "), "sload.f2fs -f src -t / -P -T 5 s"; got != want {
		t.Errorf("sload: got %s, want %s", got, want)
	}
}

func TestBuild(t *testing.T) {
	fstest.RequireTools(t, "mkfs.f2fs", "sload.f2fs", "fsck.f2fs", "dump.f2fs", "blkid")
	const off, size = 1 << 20, 128 << 20
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a"), []byte("read me back\n"), 0o644)
	os.MkdirAll(filepath.Join(src, "d/e"), 0o755)
	os.WriteFile(filepath.Join(src, "d/e/f"), []byte(strings.Repeat("f2fs ", 10000)), 0o600)
	os.Symlink("a", filepath.Join(src, "l"))
	img := filepath.Join(t.TempDir(), "disk.img")
	fstest.SentinelImage(t, img, off+size+off)
	uuid := [16]byte{0xf2, 0xf5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	opts := Options{Label: "froot", UUID: uuid, Time: time.Unix(1700000000, 0)}
	if err := Build(context.Background(), nil, img, off, size, src, opts); err != nil {
		t.Fatal(err)
	}
	fstest.CheckOutside(t, img, off, size)
	part := fstest.Extract(t, img, off, size)
	out := fstest.Output(t, "fsck.f2fs", "-f", "--dry-run", part)
	if strings.Contains(out, "[Fail]") {
		t.Errorf("fsck.f2fs:\n%s", out)
	}
	out = fstest.Output(t, "blkid", "-p", "-o", "export", part)
	for _, want := range []string{"TYPE=f2fs", "LABEL=froot", "UUID=f2f50203-0405-0607-0809-0a0b0c0d0e0f"} {
		if !strings.Contains(out, want) {
			t.Errorf("blkid: no %s in\n%s", want, out)
		}
	}
	// Inode 4 is the first one sload.f2fs makes ("a", in name order).
	dir := t.TempDir()
	c := exec.Command("dump.f2fs", "-i", "4", part)
	c.Dir, c.Stdin = dir, strings.NewReader("Y\n")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("dump.f2fs: %v\n%s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "lost_found/a")); err != nil || string(b) != "read me back\n" {
		t.Errorf("a read back as %q, %v", b, err)
	}
}
