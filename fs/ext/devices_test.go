package ext

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

func TestAddDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("needs mke2fs and debugfs")
	}
	testreq.NeedTools(t, "mke2fs", "debugfs", "e2fsck")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "dev", "pts"), 0o755)
	img := filepath.Join(dir, "img")
	f, _ := os.Create(img)
	f.Truncate(64 << 20)
	f.Close()
	epoch := time.Unix(1700000000, 0)
	build := func() string {
		opts := Options{Type: "ext4", UUID: [16]byte{1, 2, 3}, Time: epoch}
		if err := Build(context.Background(), nil, img, 1<<20, 32<<20, tree, opts); err != nil {
			t.Fatal(err)
		}
		skipped, err := AddDevices(context.Background(), nil, img, 1<<20, []Device{
			{Path: "/dev/null", Major: 1, Minor: 3, Perm: 0o666, Mtime: time.Unix(1600000000, 0)},
			{Path: "dev/tty", Major: 5, Minor: 0, Perm: 0o666, GID: 5, Mtime: time.Unix(1800000000, 0)},
			{Path: "/dev/loop0", Block: true, Major: 7, Minor: 0, Perm: 0o660, GID: 6},
			{Path: "/missing/dir/node", Major: 1, Minor: 5, Perm: 0o666},
		}, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if len(skipped) != 1 || skipped[0].Path != "/missing/dir/node" {
			t.Errorf("skipped %v", skipped)
		}
		data, _ := os.ReadFile(img)
		return string(data)
	}
	first := build()
	target := img + "?offset=1048576"
	if out, err := exec.Command("e2fsck", "-fn", target).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	out, _ := exec.Command("debugfs", "-R", "ls -l /dev", target).Output()
	for _, want := range []string{"20666 (3)      0      0       0 ", "null", "20666 (3)      0      5", "tty", "60660 (4)      0      6", "loop0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ls /dev lacks %q:\n%s", want, out)
		}
	}
	stat, _ := exec.Command("debugfs", "-R", "stat /dev/tty", target).Output()
	if !strings.Contains(string(stat), "mtime: 0x6553f100") || !strings.Contains(string(stat), "05:00") {
		t.Errorf("tty: clamped mtime and 5:0 expected:\n%s", stat)
	}
	// Rebuilding gives the same bytes: the directory's times were restored.
	time.Sleep(1100 * time.Millisecond)
	if build() != first {
		t.Errorf("two builds with devices differ")
	}
}
