package xfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/fs/internal/fstest"
)

func TestRejectsContent(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), nil, 0o644)
	img := filepath.Join(t.TempDir(), "img")
	os.WriteFile(img, make([]byte, 1<<20), 0o644)
	err := Build(context.Background(), nil, img, 0, 1<<20, src, Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot populate xfs") {
		t.Fatalf("err = %v", err)
	}
}

func TestBuild(t *testing.T) {
	fstest.RequireTools(t, "mkfs.xfs", "xfs_repair", "blkid")
	const off, size = 1 << 20, 320 << 20
	img := filepath.Join(t.TempDir(), "disk.img")
	fstest.SentinelImage(t, img, off+size+off)
	uuid := [16]byte{0x8f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	if err := Build(context.Background(), nil, img, off, size, t.TempDir(), Options{Label: "xroot", UUID: uuid}); err != nil {
		t.Fatal(err)
	}
	fstest.CheckOutside(t, img, off, size)
	part := fstest.Extract(t, img, off, size)
	fstest.Output(t, "xfs_repair", "-n", "-f", part)
	out := fstest.Output(t, "blkid", "-p", "-o", "export", part)
	for _, want := range []string{"TYPE=xfs", "LABEL=xroot", "UUID=8f010203-0405-0607-0809-0a0b0c0d0e0f"} {
		if !strings.Contains(out, want) {
			t.Errorf("blkid: no %s in\n%s", want, out)
		}
	}
}
