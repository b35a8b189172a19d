package btrfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/fs/internal/fstest"
)

func TestArgs(t *testing.T) {
	got := strings.Join(Args("src", "s", 1<<30, Options{Label: "b", UUID: [16]byte{1}, ExtraArgs: []string{"-m", "single"}}), " ")
	if want := "mkfs.btrfs -f -q -L b -U 01000000-0000-0000-0000-000000000000 -m single -b 1073741824 --rootdir src s"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestBuild(t *testing.T) {
	fstest.RequireTools(t, "mkfs.btrfs", "btrfs", "blkid")
	const off, size = 1 << 20, 256 << 20
	src := t.TempDir()
	fstest.Tree(t, src)
	img := filepath.Join(t.TempDir(), "disk.img")
	fstest.SentinelImage(t, img, off+size+off)
	uuid := [16]byte{0xb7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	if err := Build(context.Background(), nil, img, off, size, src, Options{Label: "broot", UUID: uuid}); err != nil {
		t.Fatal(err)
	}
	fstest.CheckOutside(t, img, off, size)
	part := fstest.Extract(t, img, off, size)
	fstest.Output(t, "btrfs", "check", "--readonly", part)
	out := fstest.Output(t, "blkid", "-p", "-o", "export", part)
	for _, want := range []string{"TYPE=btrfs", "LABEL=broot", "UUID=b7010203-0405-0607-0809-0a0b0c0d0e0f"} {
		if !strings.Contains(out, want) {
			t.Errorf("blkid: no %s in\n%s", want, out)
		}
	}
	dst := t.TempDir()
	fstest.Output(t, "btrfs", "restore", "-S", part, dst)
	if b, err := os.ReadFile(filepath.Join(dst, "etc/hello")); err != nil || string(b) != "hello, world\n" {
		t.Errorf("etc/hello read back as %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "etc/link")); err != nil || l != "hello" {
		t.Errorf("etc/link -> %q, %v", l, err)
	}
}
