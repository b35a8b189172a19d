package fat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildSizes builds a small tree at many sizes, including the ones at
// which go-diskfs v1.9.4 makes its FAT two entries short, and checks each
// with fsck.vfat and mtools.
func TestBuildSizes(t *testing.T) {
	requireTools(t, "fsck.vfat", "mdir", "mcopy")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := map[string]string{
		"EFI/BOOT/BOOTX64.EFI": "boot",
		"EFI/debian/grub.cfg":  "config",
		"Long name.txt":        "long",
		"cmdline.txt":          "console=ttyS0",
		"empty":                "",
	}
	for p, data := range files {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type tc struct {
		mb  int64
		fat int
	}
	var cases []tc
	for _, mb := range []int64{1, 2, 3, 5, 8, 9, 16, 33, 64, 129, 194, 259, 260, 505, 506, 507, 511, 512, 762, 763, 1018, 1020, 1275, 1533, 2044, 2048} {
		cases = append(cases, tc{mb, 0})
	}
	for _, mb := range []int64{33, 64, 129, 194, 259, 505, 506, 507, 762, 1019} {
		cases = append(cases, tc{mb, 32})
	}
	for _, mb := range []int64{1, 4, 100} {
		cases = append(cases, tc{mb, 12})
	}
	for _, mb := range []int64{9, 100, 600, 2047} {
		cases = append(cases, tc{mb, 16})
	}
	for _, c := range cases {
		name := fmt.Sprintf("%dMiB-FAT%d", c.mb, c.fat)
		img := filepath.Join(dir, "img")
		os.Remove(img)
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		size := c.mb * mib
		if err := os.Truncate(img, size); err != nil {
			t.Fatal(err)
		}
		opts := Options{FATSize: c.fat, Label: "SWEEP", VolumeID: uint32(c.mb), Time: testTime}
		buildInto(t, img, 0, size, src, opts)
		if out, err := run(t, "fsck.vfat", "-n", img); err != nil || strings.Count(out, "\n") != 2 {
			t.Errorf("%s: fsck.vfat: %v\n%s", name, err, out)
		}
		if _, err := run(t, "mdir", "-/", "-i", img, "::/"); err != nil {
			t.Errorf("%s: mdir: %v", name, err)
		}
		out, err := run(t, "mcopy", "-n", "-i", img, "::/EFI/debian/grub.cfg", "-")
		if err != nil || out != "config" {
			t.Errorf("%s: mcopy: %q, %v", name, out, err)
		}
	}
}

// TestBuildExactFit fills filesystems to the last cluster, checks them, and
// checks that one more byte is refused.
func TestBuildExactFit(t *testing.T) {
	requireTools(t, "fsck.vfat", "mcopy")
	for _, c := range []struct {
		size int64
		opts Options
	}{
		{2 * mib, Options{}},
		{20 * mib, Options{}},
		{40 * mib, Options{FATSize: 32}},
	} {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		g, err := ComputeGeometry(c.size, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		free := int64(g.Clusters) - 1 // "sub" takes a cluster
		if g.FATType == 32 {
			free-- // and so does the root directory
		}
		fill := content("fill", int(free*g.ClusterBytes()))
		if err := os.WriteFile(filepath.Join(src, "sub", "fill"), fill, 0o644); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, "img")
		prepareImage(t, img, 0, c.size, 0)
		buildInto(t, img, 0, c.size, src, c.opts)
		if out, err := run(t, "fsck.vfat", "-n", img); err != nil || !strings.Contains(out, fmt.Sprintf("%d/%d clusters", g.Clusters, g.Clusters)) {
			t.Errorf("FAT%d %d: fsck.vfat: %v\n%s", g.FATType, c.size, err, out)
		}
		if out, err := run(t, "mcopy", "-n", "-i", img, "::/sub/fill", "-"); err != nil || out != string(fill) {
			t.Errorf("FAT%d: mcopy: %v", g.FATType, err)
		}
		if err := os.WriteFile(filepath.Join(src, "sub", "one more"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = Build(f, 0, c.size, src, c.opts)
		f.Close()
		var nse *NoSpaceError
		if !errors.As(err, &nse) || nse.Need <= c.size {
			t.Errorf("FAT%d, one byte too many: %v", g.FATType, err)
		} else {
			t.Logf("%v", err)
		}
	}
}
