package fat

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeometrySweep checks the invariants of every layout from 1 MiB to
// 2 GiB in 1 MiB steps, automatic and with each FAT type forced: the FAT
// has an entry for every cluster (the go-diskfs bug), the data region fits,
// the type matches the cluster count.
func TestGeometrySweep(t *testing.T) {
	for _, fatSize := range []int{0, 12, 16, 32} {
		n := 0
		for mb := int64(1); mb <= 2048; mb++ {
			for _, extra := range []int64{0, 512 * 7} {
				size := mb*mib + extra
				g, err := ComputeGeometry(size, Options{FATSize: fatSize})
				if err != nil {
					if fatSize == 0 {
						t.Errorf("%d bytes, automatic: %v", size, err)
					}
					continue
				}
				n++
				if fatSize != 0 && g.FATType != fatSize {
					t.Errorf("%d bytes: asked FAT%d, got FAT%d", size, fatSize, g.FATType)
				}
				if uint64(g.Clusters)+2 > g.FATEntries() {
					t.Errorf("%d bytes FAT%d: %d clusters but %d FAT entries", size, g.FATType, g.Clusters, g.FATEntries())
				}
				end := uint64(g.DataSector()) + uint64(g.Clusters)*uint64(g.SectorsPerCluster)
				if end > uint64(g.TotalSectors) || int64(g.TotalSectors)*sectorSize > size {
					t.Errorf("%d bytes FAT%d: data region ends at sector %d, filesystem has %d", size, g.FATType, end, g.TotalSectors)
				}
				// One more cluster would not fit (no space wasted beyond a cluster
				// plus alignment).
				if uint64(g.TotalSectors)-end >= uint64(g.SectorsPerCluster)*2 && uint64(g.Clusters)+3 <= g.FATEntries() {
					t.Errorf("%d bytes FAT%d: %d sectors left after the last cluster", size, g.FATType, uint64(g.TotalSectors)-end)
				}
				switch g.FATType {
				case 12:
					if g.Clusters > maxClusters12 {
						t.Errorf("%d bytes: FAT12 with %d clusters", size, g.Clusters)
					}
				case 16:
					if g.Clusters < minClusters16 || g.Clusters > maxClusters16 {
						t.Errorf("%d bytes: FAT16 with %d clusters", size, g.Clusters)
					}
				case 32:
					if fatSize == 0 && g.Clusters < minClusters32 {
						t.Errorf("%d bytes: automatic FAT32 with %d clusters", size, g.Clusters)
					}
					if g.BackupBootSector != 6 || g.InfoSector != 1 {
						t.Errorf("%d bytes: backup boot %d, info %d", size, g.BackupBootSector, g.InfoSector)
					}
				}
				if g.DataSector()%g.SectorsPerCluster != 0 && g.TotalSectors > 8192 {
					t.Errorf("%d bytes FAT%d: data region at sector %d not aligned to %d-sector clusters", size, g.FATType, g.DataSector(), g.SectorsPerCluster)
				}
			}
		}
		if n == 0 {
			t.Errorf("FAT%d: no size worked", fatSize)
		}
	}
}

func TestGeometryKnown(t *testing.T) {
	// Values read from filesystems made by mkfs.fat 4.2 on files of these
	// sizes (no options), so this test runs without dosfstools.
	cases := []struct {
		mb                                        int64
		fat, spc, res, fatSecs, total, heads, spt int
	}{
		{1, 12, 4, 1, 2, 2048, 2, 16},
		{8, 12, 4, 4, 12, 16384, 2, 32},
		{9, 16, 4, 4, 20, 18432, 2, 32},
		{64, 16, 4, 4, 128, 131072, 8, 32},
		{129, 16, 8, 8, 136, 264192, 16, 32},
		{260, 16, 16, 16, 144, 532476, 16, 63},
		{511, 16, 16, 16, 256, 1046493, 32, 63},
		{512, 32, 8, 32, 1024, 1048572, 32, 63},
		{2048, 32, 8, 32, 4088, 4194288, 128, 63},
	}
	for _, c := range cases {
		g, err := ComputeGeometry(c.mb*mib, Options{})
		if err != nil {
			t.Errorf("%d MiB: %v", c.mb, err)
			continue
		}
		got := [...]int{g.FATType, int(g.SectorsPerCluster), int(g.ReservedSectors), int(g.FATSectors), int(g.TotalSectors), int(g.Heads), int(g.SectorsPerTrack)}
		want := [...]int{c.fat, c.spc, c.res, c.fatSecs, c.total, c.heads, c.spt}
		if got != want {
			t.Errorf("%d MiB: got FAT/spc/reserved/fatsecs/total/heads/spt %v, mkfs.fat gives %v", c.mb, got, want)
		}
	}
}

func TestGeometryErrors(t *testing.T) {
	for _, c := range []struct {
		size int64
		opts Options
		want string
	}{
		{16 * 1024, Options{}, "too small"},
		{0, Options{}, "too small"},
		{300 * mib, Options{FATSize: 12}, "FAT12"},
		{2 * mib, Options{FATSize: 16}, "FAT16"},
		{64 * mib, Options{SectorsPerCluster: 3}, "power of two"},
		{64 * mib, Options{SectorsPerCluster: 1}, "sectors per cluster"},
		{600 * mib, Options{ReservedSectors: 1}, "at least 2 reserved"},
	} {
		_, err := ComputeGeometry(c.size, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ComputeGeometry(%d, %+v) = %v, want an error containing %q", c.size, c.opts, err, c.want)
		}
	}
}

// TestGeometryMatchesMkfsFat formats image files with mkfs.fat 4.2 and
// compares every boot sector field that depends on the size and options.
func TestGeometryMatchesMkfsFat(t *testing.T) {
	requireTools(t, "mkfs.fat")
	dir := t.TempDir()
	type tc struct {
		kib  int64
		args []string
	}
	var cases []tc
	for _, mb := range []int64{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 32, 33, 64, 65, 100, 128, 129, 194, 255, 256, 257, 259, 260, 261, 300, 505, 506, 507, 511, 512, 513, 762, 1000, 1018, 1024, 1275, 1531, 2044, 2048, 4100, 8200} {
		cases = append(cases, tc{mb * 1024, nil})
	}
	for _, mb := range []int64{33, 40, 64, 100, 129, 194, 259, 260, 261, 300, 505, 506, 507} {
		cases = append(cases, tc{mb * 1024, []string{"-F", "32"}})
	}
	for _, mb := range []int64{4, 16, 64, 200, 1000, 2047} {
		cases = append(cases, tc{mb * 1024, []string{"-F", "16"}})
	}
	cases = append(cases,
		tc{4 * 1024, []string{"-F", "12"}}, tc{16 * 1024, []string{"-F", "12"}},
		tc{100 * 1024, []string{"-s", "1"}}, tc{100 * 1024, []string{"-F", "32", "-s", "2"}},
		tc{64 * 1024, []string{"-a"}}, tc{600 * 1024, []string{"-a"}},
		tc{64 * 1024, []string{"-R", "12", "-r", "100", "-f", "1"}},
		tc{600 * 1024, []string{"-R", "4"}}, tc{600 * 1024, []string{"-R", "3"}},
		tc{50 * 1024, []string{"-g", "255/63"}},
		tc{12345, nil}, tc{100*1024 + 1, nil}, tc{777777, nil},
	)
	for _, c := range cases {
		name := fmt.Sprintf("%dKiB%s", c.kib, strings.Join(c.args, ""))
		img := filepath.Join(dir, "x.img")
		os.Remove(img)
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, c.kib*1024); err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{"-i", "0"}, c.args...), img)
		out, err := exec.Command("mkfs.fat", args...).CombinedOutput()
		opts, perr := ParseMkfsOptions(Options{}, c.args)
		if perr != nil {
			t.Errorf("%s: %v", name, perr)
			continue
		}
		g, gerr := ComputeGeometry(c.kib*1024, opts)
		if err != nil {
			if gerr == nil {
				t.Errorf("%s: mkfs.fat fails (%s) but ComputeGeometry gives %+v", name, strings.TrimSpace(string(out)), g)
			}
			continue
		}
		if gerr != nil {
			t.Errorf("%s: mkfs.fat works but ComputeGeometry: %v", name, gerr)
			continue
		}
		b, err := readAt(img, 0, 512)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := parseBoot(b)
		want := fmt.Sprintf("FAT%d spc=%d res=%d fats=%d root=%d total=%d media=%#x fatsecs=%d spt=%d heads=%d backup=%d",
			f.fatBits(), f.SectorsPerCluster, f.Reserved, f.NumFATs, f.RootEntries, f.TotalSectors, f.Media, f.FATSectors, f.SectorsPerTrack, f.Heads, f.BackupBoot)
		got := fmt.Sprintf("FAT%d spc=%d res=%d fats=%d root=%d total=%d media=%#x fatsecs=%d spt=%d heads=%d backup=%d",
			g.FATType, g.SectorsPerCluster, g.ReservedSectors, g.NumFATs, g.RootEntries, g.TotalSectors, g.Media, g.FATSectors, g.SectorsPerTrack, g.Heads, g.BackupBootSector)
		if got != want {
			t.Errorf("%s:\n got  %s\n want %s (mkfs.fat)", name, got, want)
		}
	}
}

func (f bootFields) fatBits() int {
	switch strings.TrimSpace(f.FATType) {
	case "FAT12":
		return 12
	case "FAT16":
		return 16
	case "FAT32":
		return 32
	}
	return 0
}

// TestEmptyMatchesMkfsFat builds an empty tree and compares the metadata
// with what mkfs.fat 4.2 writes for the same size and options: boot
// sector (apart from the boot code), FSInfo (apart from the free-cluster
// hint, see fsInfo), every FAT and the root directory.
func TestEmptyMatchesMkfsFat(t *testing.T) {
	requireTools(t, "mkfs.fat")
	dir := t.TempDir()
	src := filepath.Join(dir, "empty")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mb   int64
		args []string
	}{
		{4, []string{"-n", "RASPIFIRM"}},
		{64, []string{"-n", "EFI"}},
		{64, []string{"-F", "32", "-n", "ESP"}},
		{200, []string{"-s", "16"}},
		{600, []string{"-n", "boot"}},
	} {
		name := fmt.Sprintf("%dMiB%s", c.mb, strings.Join(c.args, ""))
		size := c.mb * mib
		ref := filepath.Join(dir, "ref.img")
		os.Remove(ref)
		if err := os.WriteFile(ref, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(ref, size+mib); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--invariant", "--offset", "2048"}, c.args...)
		args = append(args, ref, fmt.Sprint(size/1024))
		if out, err := exec.Command("mkfs.fat", args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: mkfs.fat: %v\n%s", name, err, out)
		}
		opts, err := ParseMkfsOptions(Options{}, append([]string{"--invariant"}, c.args...))
		if err != nil {
			t.Fatal(err)
		}
		var buf writerAtBuffer
		// At offset 0, as mkfs.fat --offset records no hidden sectors in a file.
		if err := Build(&buf, 0, size, src, opts); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g, _ := ComputeGeometry(size, opts)
		meta := int64(g.DataSector()) * sectorSize
		if g.FATType == 32 {
			meta += g.ClusterBytes() // the root directory's cluster
		}
		want, err := readAt(ref, mib, meta)
		if err != nil {
			t.Fatal(err)
		}
		got := buf.b[:meta]
		codeAt := 0x3E
		if g.FATType == 32 {
			codeAt = 0x5A
		}
		same := func(what string, from, to int64) {
			if !bytes.Equal(got[from:to], want[from:to]) {
				for i := from; i < to; i++ {
					if got[i] != want[i] {
						t.Errorf("%s: %s differs from mkfs.fat's first at byte %#x: %#02x, want %#02x", name, what, i, got[i], want[i])
						return
					}
				}
			}
		}
		same("boot sector", 0, int64(codeAt))
		same("boot signature", 510, 512)
		if g.FATType == 32 {
			same("FSInfo", 512, 512+492)
			same("FSInfo end", 512+496, 1024)
			same("reserved sectors", 1024, 6*512)
			same("backup boot sector", 6*512, 6*512+int64(codeAt))
			same("backup FSInfo", 7*512, 7*512+492)
			same("reserved sectors", 8*512, int64(g.ReservedSectors)*512)
		} else {
			same("reserved sectors", 512, int64(g.ReservedSectors)*512)
		}
		same("FATs and root directory", int64(g.ReservedSectors)*512, meta)
	}
}
