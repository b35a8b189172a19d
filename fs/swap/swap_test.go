package swap

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/fs/internal/fstest"
)

func TestArgs(t *testing.T) {
	got := strings.Join(Args("s", Options{Label: "sw", UUID: [16]byte{1}, ExtraArgs: []string{"", "-p", "4096"}}), " ")
	if want := "mkswap -q -L sw -U 01000000-0000-0000-0000-000000000000 -p 4096 s"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestBuild(t *testing.T) {
	fstest.RequireTools(t, "mkswap", "blkid")
	const off, size = 1 << 20, 16 << 20
	img := filepath.Join(t.TempDir(), "disk.img")
	fstest.SentinelImage(t, img, off+size+off)
	uuid := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if err := Build(context.Background(), nil, img, off, size, Options{Label: "swp", UUID: uuid}); err != nil {
		t.Fatal(err)
	}
	fstest.CheckOutside(t, img, off, size)
	part := fstest.Extract(t, img, off, size)
	out := fstest.Output(t, "blkid", "-p", "-o", "export", part)
	for _, want := range []string{"TYPE=swap", "LABEL=swp", "UUID=deadbeef-0102-0304-0506-0708090a0b0c"} {
		if !strings.Contains(out, want) {
			t.Errorf("blkid: no %s in\n%s", want, out)
		}
	}
	b, _ := os.ReadFile(part)
	if !bytes.Equal(b[4096:], make([]byte, size-4096)) {
		t.Error("old bytes survive after the swap header")
	}
}
