package squashfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/fs/internal/fstest"
)

const off, size = 1 << 20, 8 << 20

func build(t *testing.T, src string, opts Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	fstest.SentinelImage(t, img, off+size+off)
	if err := Build(context.Background(), nil, img, off, size, src, opts); err != nil {
		t.Fatal(err)
	}
	fstest.CheckOutside(t, img, off, size)
	return img
}

func TestBuild(t *testing.T) {
	fstest.RequireTools(t, "mksquashfs", "unsquashfs")
	opts := Options{Time: time.Unix(1700000000, 0)}
	a := t.TempDir()
	fstest.Tree(t, a)
	img := build(t, a, opts)
	part := fstest.Extract(t, img, off, size)
	ls := fstest.Output(t, "unsquashfs", "-lln", part)
	for _, want := range []string{"-rwsr-xr-x", "etc/link -> hello", "prw-r--r--", "squashfs-root/sparse"} {
		if !strings.Contains(ls, want) {
			t.Errorf("no %q in listing:\n%s", want, ls)
		}
	}
	if os.Geteuid() == 0 && (!strings.Contains(ls, "1234/5678") || !strings.Contains(ls, "1,  3")) {
		t.Errorf("owner or device lost:\n%s", ls)
	}
	if got := fstest.Output(t, "unsquashfs", "-cat", part, "etc/hello"); got != "hello, world\n" {
		t.Errorf("etc/hello = %q", got)
	}
	time.Sleep(1100 * time.Millisecond)
	b := t.TempDir()
	fstest.Tree(t, b)
	if fstest.RegionSum(t, img, off, size) != fstest.RegionSum(t, build(t, b, opts), off, size) {
		t.Error("two builds of the same tree differ")
	}
}

func TestTooSmall(t *testing.T) {
	fstest.RequireTools(t, "mksquashfs")
	src := t.TempDir()
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7919 + i>>8*31)
	}
	os.WriteFile(filepath.Join(src, "big"), big, 0o644)
	img := filepath.Join(t.TempDir(), "disk.img")
	fstest.SentinelImage(t, img, 3<<20)
	err := Build(context.Background(), nil, img, 1<<20, 1<<20, src, Options{ExtraArgs: []string{"-noI", "-noD"}})
	var tse *fstool.TooSmallError
	if !errors.As(err, &tse) || tse.Need <= 3<<20 {
		t.Fatalf("err = %v, want a TooSmallError needing > 3 MiB", err)
	}
	t.Log(err)
	fstest.CheckOutside(t, img, 1<<20, 1<<20)
	if Build(context.Background(), nil, img, 0, 1<<20, src, Options{Label: "x"}) == nil {
		t.Error("label accepted")
	}
}
