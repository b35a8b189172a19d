package ext

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/internal/fstest"
)

var (
	testUUID = [16]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01}
	testTime = time.Unix(1700000000, 0)
)

func TestArgs(t *testing.T) {
	args, err := Args("img", 1048576, 64<<20, "src", Options{
		Type: "ext4", Label: "root", UUID: testUUID,
		ExtraArgs: []string{"-m", "", "1", "-E", "lazy_itable_init=0", "-Enodiscard"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	want := "mke2fs -F -q -t ext4 -L root -U 11223344-5566-7788-99aa-bbccddeeff01 -O ^large_dir -O ^metadata_csum_seed -m 1 " +
		"-E offset=1048576,root_owner=0:0,hash_seed=11223344-5566-7788-99aa-bbccddeeff01,lazy_journal_init=1,lazy_itable_init=0,nodiscard -d src img 65536k"
	if got != want {
		t.Errorf("args:\n got %s\nwant %s", got, want)
	}
	args, err = Args("img", 0, 8<<20, "src", Options{Type: "ext2", UUID: testUUID, HashSeed: [16]byte{1}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(args, "^large_dir") || slices.Contains(args, "-L") {
		t.Errorf("ext2 args carry ext4 or label flags: %v", args)
	}
	if strings.Contains(strings.Join(args, " "), "lazy_journal_init") {
		t.Errorf("a region not known to be zeroed gets lazy_journal_init: %v", args)
	}
	for _, bad := range []Options{
		{Type: "ext5", UUID: testUUID},
		{Type: "ext4"},
		{Type: "ext4", UUID: testUUID, ExtraArgs: []string{"-E", "offset=5"}},
		{Type: "ext4", UUID: testUUID, ExtraArgs: []string{"-d", "/"}},
		{Type: "ext4", UUID: testUUID, ExtraArgs: []string{"-E"}},
	} {
		if _, err := Args("img", 0, 8<<20, "src", bad, false); err == nil {
			t.Errorf("Args(%+v) succeeded, want an error", bad)
		}
	}
}

func TestEstimate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create(filepath.Join(dir, "sparse"))
	f.Truncate(1 << 30)
	f.Close()
	e, err := Estimate(dir, "ext4", 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if e.Files != 3 || e.Data < 3<<20 || e.Data > 4<<20 || e.Need < 4<<20 || e.Need > 16<<20 {
		t.Errorf("Estimate = %+v", e)
	}
}

func TestBuildRejectsRegionOutsideImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	os.WriteFile(img, make([]byte, 4<<20), 0o644)
	err := Build(context.Background(), nil, img, 1<<20, 4<<20, t.TempDir(), Options{Type: "ext4", UUID: testUUID})
	if err == nil || !strings.Contains(err.Error(), "beyond the end") {
		t.Fatalf("err = %v, want a region error", err)
	}
}

// debugfs runs a debugfs request against the filesystem at off of img.
func debugfs(t *testing.T, img string, off int64, req string) string {
	t.Helper()
	return fstest.Output(t, "debugfs", "-R", req, fmt.Sprintf("%s?offset=%d", img, off))
}

func field(t *testing.T, stat, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(stat)
	if m == nil {
		t.Fatalf("no %q in:\n%s", re, stat)
	}
	return m[1]
}

const (
	off  = 1 << 20
	size = 96 << 20
)

func buildImage(t *testing.T, src string, opts Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	fstest.SentinelImage(t, img, off+size+1<<20)
	if err := Build(context.Background(), nil, img, off, size, src, opts); err != nil {
		t.Fatal(err)
	}
	fstest.CheckOutside(t, img, off, size)
	return img
}

func TestBuild(t *testing.T) {
	fstest.RequireTools(t, "mke2fs", "e2fsck", "debugfs", "dumpe2fs")
	for _, typ := range []string{"ext2", "ext3", "ext4"} {
		t.Run(typ, func(t *testing.T) {
			src := t.TempDir()
			fstest.Tree(t, src)
			img := buildImage(t, src, Options{Type: typ, Label: "rootfs", UUID: testUUID, Time: testTime})
			part := fmt.Sprintf("%s?offset=%d", img, off)
			fstest.Output(t, "e2fsck", "-fn", part)

			hdr := fstest.Output(t, "dumpe2fs", "-h", part)
			if got := field(t, hdr, `Filesystem volume name:\s+(\S+)`); got != "rootfs" {
				t.Errorf("label %q", got)
			}
			if got := field(t, hdr, `Filesystem UUID:\s+(\S+)`); got != FormatUUID(testUUID) {
				t.Errorf("UUID %q", got)
			}
			if got := field(t, hdr, `Block count:\s+(\d+)`); got != fmt.Sprint(size/1024) {
				t.Errorf("block count %s, want %d (1 KiB blocks)", got, size/1024)
			}
			feat := field(t, hdr, `Filesystem features:\s+(.*)`)
			if typ == "ext4" && (strings.Contains(feat, "large_dir") || strings.Contains(feat, "metadata_csum_seed") || !strings.Contains(feat, "metadata_csum")) {
				t.Errorf("ext4 features: %s", feat)
			}
			if typ == "ext3" != strings.Contains(feat, "has_journal") && typ != "ext4" {
				t.Errorf("%s features: %s", typ, feat)
			}
			if u, err := ReadUUID(img, off); err != nil || u != testUUID {
				t.Errorf("ReadUUID = %x, %v", u, err)
			}

			if got := debugfs(t, img, off, "cat /etc/hello"); got != "hello, world\n" {
				t.Errorf("cat /etc/hello = %q", got)
			}
			if got := debugfs(t, img, off, "cat /etc/deep/er/file"); got != strings.Repeat("0123456789abcdef", 5000) {
				t.Errorf("/etc/deep/er/file has %d bytes", len(got))
			}
			st := debugfs(t, img, off, "stat /etc/hello")
			if field(t, st, `Links: (\d+)`) != "2" {
				t.Errorf("hard link: %s", st)
			}
			if field(t, st, `mtime: 0x([0-9a-f]+)`) != fmt.Sprintf("%08x", fstest.Old.Unix()) {
				t.Errorf("old mtime not kept: %s", st)
			}
			for _, tm := range []string{"atime", "ctime"} {
				if field(t, st, tm+`: 0x([0-9a-f]+)`) != fmt.Sprintf("%08x", testTime.Unix()) {
					t.Errorf("%s not normalised: %s", tm, st)
				}
			}
			st = debugfs(t, img, off, "stat /etc/deep/er/file")
			if field(t, st, `mtime: 0x([0-9a-f]+)`) != fmt.Sprintf("%08x", testTime.Unix()) {
				t.Errorf("new mtime not clamped: %s", st)
			}
			if field(t, st, `Mode:\s+(\d+)`) != "0600" {
				t.Errorf("mode: %s", st)
			}
			if got := field(t, debugfs(t, img, off, "stat /etc/link"), `Fast link dest: "(.*)"`); got != "hello" {
				t.Errorf("symlink -> %q", got)
			}
			if !strings.Contains(debugfs(t, img, off, "stat /etc/longlink"), "Size: 103") {
				t.Error("long symlink lost")
			}
			if !strings.Contains(debugfs(t, img, off, "stat /etc/fifo"), "Type: FIFO") {
				t.Error("fifo lost")
			}
			if got := debugfs(t, img, off, "ea_get /etc/xattr user.comment"); !strings.Contains(got, "kept") {
				t.Errorf("xattr: %q", got)
			}
			if field(t, debugfs(t, img, off, "stat /suid"), `Mode:\s+(\d+)`) != "04755" {
				t.Error("setuid bit lost")
			}
			st = debugfs(t, img, off, "stat /sparse")
			if field(t, st, `Size: (\d+)`) != fmt.Sprint(64<<20) || !slices.Contains([]string{"2", "6"}, field(t, st, `Blockcount: (\d+)`)) {
				// one data block, plus two indirect blocks without extents
				t.Errorf("sparse file not sparse:\n%s", st)
			}
			st = debugfs(t, img, off, "stat /")
			if field(t, st, `User:\s+(\d+)`) != "0" || field(t, st, `Group:\s+(\d+)`) != "0" {
				t.Errorf("root owner: %s", st)
			}
			if os.Geteuid() != 0 {
				t.Log("not root: owners and device nodes not tested")
				return
			}
			st = debugfs(t, img, off, "stat /owned")
			if field(t, st, `User:\s+(\d+)`) != "1234" || field(t, st, `Group:\s+(\d+)`) != "5678" {
				t.Errorf("owner: %s", st)
			}
			st = debugfs(t, img, off, "stat /dev/null")
			if !strings.Contains(st, "Type: character special") || !strings.Contains(st, "Device major/minor number: 01:03") {
				t.Errorf("device node: %s", st)
			}
		})
	}
}

func TestBuildTooSmall(t *testing.T) {
	fstest.RequireTools(t, "mke2fs")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "blob"), []byte(strings.Repeat("not zero ", 2<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	const small = 8 << 20
	fstest.SentinelImage(t, img, off+small+off)
	err := Build(context.Background(), nil, img, off, small, src, Options{Type: "ext4", UUID: testUUID, Time: testTime})
	var tse *TooSmallError
	if !errors.As(err, &tse) {
		t.Fatalf("err = %v, want a *TooSmallError", err)
	}
	t.Log(err)
	if tse.Have != small || tse.Need < 18<<20 || tse.Need > 40<<20 {
		t.Errorf("need %d, have %d", tse.Need, tse.Have)
	}
	fstest.CheckOutside(t, img, off, small)
	if _, err := ReadUUID(img, off); err == nil {
		t.Error("a superblock survived the failed build")
	}
	if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, off)).CombinedOutput(); err == nil {
		t.Errorf("e2fsck accepts the region of a failed build:\n%s", out)
	}
}

func TestReproducible(t *testing.T) {
	fstest.RequireTools(t, "mke2fs", "e2fsck")
	opts := Options{Type: "ext4", Label: "r", UUID: testUUID, Time: testTime}
	a := t.TempDir()
	fstest.Tree(t, a)
	imgA := buildImage(t, a, opts)
	time.Sleep(1100 * time.Millisecond) // new ctimes, atimes and mtimes
	b := t.TempDir()
	fstest.Tree(t, b)
	imgB := buildImage(t, b, opts)
	if sa, sb := fstest.RegionSum(t, imgA, off, size), fstest.RegionSum(t, imgB, off, size); sa != sb {
		out, _ := exec.Command("cmp", "-l", imgA, imgB).Output()
		t.Fatalf("two builds differ: %s vs %s; cmp -l:\n%.2000s", sa, sb, out)
	}
	fstest.Output(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", imgA, off))
}

// TestLazyJournalSameBytes: on a region that reads as zeros, Build lets
// mke2fs skip writing the journal's zero blocks (lazy_journal_init). The
// filesystem must be byte for byte the one mke2fs writes when it zeroes the
// journal itself, and the image must stay sparse: the journal's blocks
// (32 MiB here) are not allocated.
func TestLazyJournalSameBytes(t *testing.T) {
	fstest.RequireTools(t, "mke2fs", "e2fsck")
	const big = 1 << 30 // 4 KiB blocks, a 32 MiB journal
	src := t.TempDir()
	fstest.Tree(t, src)
	opts := Options{Type: "ext4", Label: "r", UUID: testUUID, Time: testTime}
	sparseImage := func() string {
		img := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, off+big); err != nil {
			t.Fatal(err)
		}
		return img
	}
	lazy := sparseImage()
	if err := Build(context.Background(), nil, lazy, off, big, src, opts); err != nil {
		t.Fatal(err)
	}
	// The same build with the option forced off: mke2fs writes the zeros.
	dense := sparseImage()
	args, err := Args(dense, off, big, src, opts, false)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dense, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := build(context.Background(), nil, f, args, off, big, src, opts); err != nil {
		t.Fatal(err)
	}
	if a, b := fstest.RegionSum(t, lazy, off, big), fstest.RegionSum(t, dense, off, big); a != b {
		t.Fatalf("lazy_journal_init changed the filesystem: %s with it, %s without", a, b)
	}
	la, da := allocated(t, lazy), allocated(t, dense)
	t.Logf("allocated: %d KiB with lazy_journal_init, %d KiB without", la>>10, da>>10)
	if la > da-24<<20 {
		t.Errorf("the lazy build allocates %d KiB, the dense one %d KiB: the journal's zeros were written", la>>10, da>>10)
	}
	fstest.Output(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", lazy, off))
}

// allocated returns the bytes the file occupies on disk (st_blocks).
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
