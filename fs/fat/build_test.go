package fat

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2023, 11, 14, 22, 13, 21, 0, time.UTC)

// content makes deterministic, not very compressible file content.
func content(seed string, n int) []byte {
	b := make([]byte, 0, n+32)
	h := sha256.Sum256([]byte(seed))
	for len(b) < n {
		b = append(b, h[:]...)
		h = sha256.Sum256(h[:])
	}
	return b[:n]
}

type treeSpec struct {
	files map[string][]byte // relative path → content
	dirs  []string          // directories, empty ones included
	links map[string]string // relative path → link target (links to files)
}

// makeTree writes a test tree. big is the size of the largest file.
func makeTree(t testing.TB, root string, big int, manyInRoot int) treeSpec {
	t.Helper()
	s := treeSpec{files: map[string][]byte{}, links: map[string]string{}}
	add := func(p string, data []byte) { s.files[p] = data }
	add("README.TXT", []byte("exact 8.3 name\n"))
	add("readme.md", []byte("lower case name that fits 8.3\n"))
	add("Mixed.Txt", []byte("mixed case\n"))
	add("EFI/BOOT/BOOTX64.EFI", content("bootx64", 150*1024+7))
	add("EFI/debian/grub.cfg", []byte("search --fs-uuid --set=root 1234\n"))
	add("empty", nil)
	add("big.bin", content("big", big))
	add("a/b/c/d/e/deep file.txt", []byte("deep\n"))
	add(".hidden", []byte("dot file\n"))
	add("my.file.tar.gz", content("tgz", 3000))
	add("with space", []byte("space\n"))
	add("unicodé 名前.txt", []byte("unicode\n"))
	add("x+y=z[1];a,b.txt", []byte("chars replaced in the short name\n"))
	add("thirteen_char", []byte("13 characters: exactly one LFN entry\n"))
	add("twenty-six-characters-abc", []byte("26 characters\n"))
	add(strings.Repeat("n", 251)+".txt", []byte("longest name\n"))
	add("LONGFI~1.TXT", []byte("an exact name that looks generated\n"))
	add("ro.txt", []byte("read only\n"))
	add("cluster.bin", content("cluster", 4096))
	for i := 1; i <= 25; i++ {
		add(fmt.Sprintf("many/Long File Name %d.txt", i), []byte(fmt.Sprintf("file %d\n", i)))
	}
	for i := 0; i < manyInRoot; i++ {
		add(fmt.Sprintf("rootfile%03d.dat", i), content(fmt.Sprint(i), i*37))
	}
	s.dirs = []string{"emptydir", "EFI/empty"}
	s.links = map[string]string{"link-to-readme": "README.TXT", "EFI/BOOT/grub.lnk": "../debian/grub.cfg"}

	for p, data := range s.files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "ro.txt"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, d := range s.dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range s.links {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
		s.files[p] = s.files[filepath.Join(filepath.Dir(p), target)]
	}
	return s
}

// prepareImage creates an image file with a recognisable pattern before,
// in the first part of, and after the region, so that leaks and stray
// writes show.
func prepareImage(t testing.TB, path string, offset, size, tail int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(offset + size + tail); err != nil {
		t.Fatal(err)
	}
	pat := bytes.Repeat([]byte{0xA5}, int(offset))
	if _, err := f.WriteAt(pat, 0); err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte{0xCC}, int(min(size, 4*mib)))
	if _, err := f.WriteAt(garbage, offset); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0x5A}, int(tail)), offset+size); err != nil {
		t.Fatal(err)
	}
}

func checkOutside(t testing.TB, path string, offset, size, tail int64) {
	t.Helper()
	before, err := readAt(path, 0, offset)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, bytes.Repeat([]byte{0xA5}, int(offset))) {
		t.Errorf("bytes before the region were changed")
	}
	after, err := readAt(path, offset+size, tail)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, bytes.Repeat([]byte{0x5A}, int(tail))) {
		t.Errorf("bytes after the region were changed")
	}
}

func buildInto(t testing.TB, img string, offset, size int64, src string, opts Options) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Build(f, offset, size, src, opts); err != nil {
		t.Fatalf("Build: %v", err)
	}
}

// extract copies the region into a file of its own, for fsck.vfat (which
// has no offset option).
func extract(t testing.TB, img, out string, offset, size int64) {
	t.Helper()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	// Copy block by block, leaving zero blocks as holes.
	buf := make([]byte, 1<<20)
	for pos := int64(0); pos < size; pos += int64(len(buf)) {
		n := int(min(int64(len(buf)), size-pos))
		if _, err := in.ReadAt(buf[:n], offset+pos); err != nil {
			t.Fatal(err)
		}
		if bytes.Count(buf[:n], []byte{0}) == n {
			continue
		}
		if _, err := o.WriteAt(buf[:n], pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MTOOLSRC=/dev/null")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	if errb.Len() > 0 {
		return out.String(), fmt.Errorf("%s %s printed on stderr: %s", name, strings.Join(args, " "), errb.String())
	}
	return out.String(), nil
}

func TestBuildChecked(t *testing.T) {
	requireTools(t, "fsck.vfat", "mdir", "mcopy", "minfo")
	cases := []struct {
		name       string
		size       int64
		opts       Options
		fat        int
		big        int
		manyInRoot int
	}{
		{"fat12-4MiB", 4 * mib, Options{Label: "RASPIFIRM"}, 12, 1 * mib, 20},
		{"fat16-64MiB", 64 * mib, Options{Label: "EFI"}, 16, 5 * mib, 100},
		{"fat16-129MiB-lowercase-label", 129 * mib, Options{Label: "boot"}, 16, 3 * mib, 0},
		{"fat32-64MiB-forced", 64 * mib, Options{FATSize: 32, Label: "ESP"}, 32, 5 * mib, 100},
		{"fat32-129MiB-forced-s2", 129 * mib, Options{FATSize: 32, SectorsPerCluster: 2}, 32, 3 * mib, 40},
		{"fat32-600MiB-auto", 600 * mib, Options{Label: "EFI SYSTEM"}, 32, 7 * mib, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			spec := makeTree(t, src, c.big, c.manyInRoot)
			img := filepath.Join(dir, "disk.img")
			const offset, tail = 1 * mib, 1 * mib
			prepareImage(t, img, offset, c.size, tail)
			opts := c.opts
			opts.VolumeID = 0xDEADBEEF
			opts.Time = testTime
			buildInto(t, img, offset, c.size, src, opts)
			checkOutside(t, img, offset, c.size, tail)

			part := filepath.Join(dir, "part.img")
			extract(t, img, part, offset, c.size)
			out, err := run(t, "fsck.vfat", "-n", "-V", part)
			if err != nil {
				t.Fatalf("fsck.vfat: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, l := range lines {
				if !strings.HasPrefix(l, "fsck.fat ") && !strings.HasPrefix(l, part+": ") &&
					l != "Starting check/repair pass." && l != "Starting verification pass." {
					t.Errorf("fsck.vfat complains: %q", l)
				}
			}
			t.Logf("fsck.vfat: %s", lines[len(lines)-1])

			at := fmt.Sprintf("%s@@%d", img, offset)
			// Boot sector fields.
			b, err := readAt(img, offset, 512)
			if err != nil {
				t.Fatal(err)
			}
			bf, _ := parseBoot(b)
			if bf.fatBits() != c.fat || bf.Hidden != offset/512 || bf.Media != 0xF8 || bf.Signature != 0xAA55 || bf.VolumeID != 0xDEADBEEF {
				t.Errorf("boot sector: %+v", bf)
			}
			info, err := run(t, "minfo", "-i", at, "::")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"serial number: DEADBEEF", fmt.Sprintf(`disk type="FAT%d   "`, c.fat), fmt.Sprintf("hidden sectors: %d", offset/512)} {
				if !strings.Contains(info, want) {
					t.Errorf("minfo lacks %q:\n%s", want, info)
				}
			}
			if c.opts.Label != "" && !strings.Contains(info, fmt.Sprintf(`label="%-11s"`, c.opts.Label)) {
				t.Errorf("minfo lacks label %q:\n%s", c.opts.Label, info)
			}
			if _, err := exec.LookPath("blkid"); err == nil {
				out, err := run(t, "blkid", "-p", "-o", "export", part)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"UUID=DEAD-BEEF", fmt.Sprintf("VERSION=FAT%d", c.fat), "TYPE=vfat"} {
					if !strings.Contains(out, want+"\n") {
						t.Errorf("blkid lacks %q:\n%s", want, out)
					}
				}
				if c.opts.Label != "" && !strings.Contains(out, "LABEL="+strings.ReplaceAll(c.opts.Label, " ", `\ `)+"\n") {
					t.Errorf("blkid lacks the label %q:\n%s", c.opts.Label, out)
				}
			}

			// Every path is listed, with its long name.
			listing, err := run(t, "mdir", "-/", "-b", "-i", at, "::/")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
				got[strings.TrimSuffix(strings.TrimPrefix(l, "::/"), "/")] = true
			}
			var want []string
			for p := range spec.files {
				want = append(want, p)
			}
			want = append(want, spec.dirs...)
			sort.Strings(want)
			for _, p := range want {
				if !got[p] {
					t.Errorf("mdir does not list %q", p)
				}
			}
			// Every file reads back byte for byte.
			for _, p := range want {
				data, isFile := spec.files[p]
				if !isFile {
					continue
				}
				mp := "::/" + p
				if strings.ContainsAny(p, "[]*?") {
					mp = "::/X_Y_Z_~1.TXT" // mtools would take the brackets as a pattern
				}
				out, err := run(t, "mcopy", "-n", "-i", at, mp, "-")
				if err != nil {
					t.Errorf("mcopy %s: %v", p, err)
					continue
				}
				if !bytes.Equal([]byte(out), data) {
					t.Errorf("%s reads back as %d bytes that differ from the %d written", p, len(out), len(data))
				}
			}
			// Short names and attributes as mtools sees them.
			many, err := run(t, "mdir", "-i", at, "::/many")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"LONGFI~1 TXT", "LONGFI~9 TXT", "LONGF~10 TXT", "Long File Name 25.txt"} {
				if !strings.Contains(many, want) {
					t.Errorf("mdir ::/many lacks %q:\n%s", want, many)
				}
			}
			rootList, err := run(t, "mdir", "-i", at, "::/")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"LONGFI~1 TXT", "README   TXT", "MIXED    TXT", "HIDDEN~1", "MYFILE~1 GZ", "X_Y_Z_~1 TXT", "2023-11-14  22:13"} {
				if !strings.Contains(rootList, want) {
					t.Errorf("mdir ::/ lacks %q:\n%s", want, rootList)
				}
			}
			attrs, err := run(t, "mattrib", "-i", at, "::/ro.txt", "::/README.TXT")
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(strings.TrimSpace(attrs), "\n") {
				flags, file, _ := strings.Cut(l, "::/")
				flags = strings.Join(strings.Fields(flags), "")
				if want := map[string]string{"ro.txt": "AR", "README.TXT": "A"}[file]; flags != want {
					t.Errorf("mattrib %s: %q, want %q", file, flags, want)
				}
			}

			// The same tree built again gives the same bytes.
			img2 := filepath.Join(dir, "disk2.img")
			prepareImage(t, img2, offset, c.size, tail)
			buildInto(t, img2, offset, c.size, src, opts)
			if h1, h2 := fileHash(t, img), fileHash(t, img2); h1 != h2 {
				t.Errorf("two builds differ")
			}
		})
	}
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestBuildNoSpace(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "big"), content("x", 9*mib), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	prepareImage(t, img, 4096, 8*mib, 4096)
	before := fileHash(t, img)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = Build(f, 4096, 8*mib, src, Options{})
	var nse *NoSpaceError
	if !errors.As(err, &nse) {
		t.Fatalf("Build = %v, want a NoSpaceError", err)
	}
	if nse.Need != 10*mib || nse.Have != 8*mib {
		t.Errorf("need %d, have %d", nse.Need, nse.Have)
	}
	if !strings.Contains(err.Error(), "needs 10 MiB but the partition has 8 MiB") {
		t.Errorf("message: %v", err)
	}
	if fileHash(t, img) != before {
		t.Errorf("a failed Build wrote to the image")
	}
	need, err := RequiredSize(src, Options{})
	if err != nil || need != 10*mib {
		t.Errorf("RequiredSize = %d, %v", need, err)
	}

	// Too many root entries for FAT16.
	src2 := filepath.Join(dir, "src2")
	if err := os.MkdirAll(src2, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if err := os.WriteFile(filepath.Join(src2, fmt.Sprintf("File number %d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err = Build(f, 4096, 8*mib, src2, Options{})
	if !errors.As(err, &nse) || !strings.Contains(err.Error(), "root directory needs") {
		t.Errorf("Build = %v", err)
	}
	if err := Build(f, 4096, 8*mib, src2, Options{RootEntries: 1024}); err != nil {
		t.Errorf("with -r 1024: %v", err)
	}
}

func TestBuildRejects(t *testing.T) {
	// A name longer than FAT's 255 UTF-16 units needs more than 255
	// bytes, which no Linux filesystem takes: TestCheckLongName checks
	// that limit.
	cases := []struct {
		name string
		mk   func(root string) error
		want string
	}{
		{"absolute symlink", func(r string) error { return os.Symlink("/etc/passwd", filepath.Join(r, "l")) }, "absolute path /etc/passwd"},
		{"escaping symlink", func(r string) error { return os.Symlink("../../x", filepath.Join(r, "l")) }, "leading out of"},
		{"dangling symlink", func(r string) error { return os.Symlink("nowhere", filepath.Join(r, "l")) }, "dangling"},
		{"directory symlink", func(r string) error {
			if err := os.Mkdir(filepath.Join(r, "d"), 0o755); err != nil {
				return err
			}
			return os.Symlink("d", filepath.Join(r, "l"))
		}, "symbolic link to a directory"},
		{"fifo", func(r string) error { return mkfifo(filepath.Join(r, "pipe")) }, "pipe is a named pipe"},
		{"case clash", func(r string) error {
			if err := os.WriteFile(filepath.Join(r, "Readme"), nil, 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(r, "README"), nil, 0o644)
		}, "differ only in case"},
		{"colon", func(r string) error { return os.WriteFile(filepath.Join(r, "a:b"), nil, 0o644) }, `contains ':'`},
		{"trailing dot", func(r string) error { return os.WriteFile(filepath.Join(r, "a."), nil, 0o644) }, "ends with a dot"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if err := c.mk(root); err != nil {
				t.Fatalf("cannot make the hostile tree (is TMPDIR on a filesystem without case or named pipes?): %v", err)
			}
			var buf writerAtBuffer
			err := Build(&buf, 0, 2*mib, root, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build = %v, want an error containing %q", err, c.want)
			}
			if len(buf.b) != 0 {
				t.Errorf("a rejected tree wrote %d bytes", len(buf.b))
			}
		})
	}
}

func TestBuildArguments(t *testing.T) {
	root := t.TempDir()
	var buf writerAtBuffer
	for _, c := range []struct {
		off, size int64
		opts      Options
		want      string
	}{
		{100, 2 * mib, Options{}, "offset 100"},
		{0, 2 * mib, Options{Label: "a.b"}, "label"},
		{0, 2 * mib, Options{Label: "TWELVE CHARS"}, "longer than 11"},
		{0, 2 * mib, Options{FATSize: 13}, "FAT size 13"},
		{0, 10 * 1024, Options{}, "too small"},
	} {
		if err := Build(&buf, c.off, c.size, root, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Build(%d, %d, %+v) = %v, want %q", c.off, c.size, c.opts, err, c.want)
		}
	}
	if err := Build(&buf, 0, 2*mib, filepath.Join(root, "missing"), Options{}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source: %v", err)
	}
}

// writerAtBuffer is an in-memory io.WriterAt.
type writerAtBuffer struct{ b []byte }

func (w *writerAtBuffer) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(w.b)) {
		w.b = append(w.b, make([]byte, end-int64(len(w.b)))...)
	}
	copy(w.b[off:], p)
	return len(p), nil
}

// TestBuildEmpty builds an empty tree and checks the result structurally,
// without host tools.
func TestBuildEmpty(t *testing.T) {
	root := t.TempDir()
	for _, fatSize := range []int{0, 32} {
		var buf writerAtBuffer
		if err := Build(&buf, 0, 40*mib, root, Options{FATSize: fatSize, Label: "EMPTY", VolumeID: 1}); err != nil {
			t.Fatal(err)
		}
		bf, err := parseBoot(buf.b)
		if err != nil {
			t.Fatal(err)
		}
		if bf.Label != "EMPTY      " || bf.VolumeID != 1 || bf.Signature != 0xAA55 || bf.OEM != "mkfs.fat" {
			t.Errorf("boot sector %+v", bf)
		}
		if fatSize == 32 {
			info := buf.b[512:1024]
			if string(info[:4]) != "RRaA" || string(info[484:488]) != "rrAa" {
				t.Errorf("FSInfo signatures wrong")
			}
			if !bytes.Equal(buf.b[6*512:7*512], buf.b[:512]) {
				t.Errorf("backup boot sector differs")
			}
		}
	}
}

// TestBuildOverGarbage builds into a region full of old bytes and into a
// zeroed one: everything the filesystem uses (metadata and the allocated
// clusters, slack included) must be identical; only free clusters keep
// what was there.
func TestBuildOverGarbage(t *testing.T) {
	for _, opts := range []Options{{}, {FATSize: 32}} {
		src := t.TempDir()
		makeTree(t, src, 300*1024, 30)
		const size = 40 * mib
		garbage := writerAtBuffer{b: bytes.Repeat([]byte{0xE5, 0x0F, 0xF6, 0xAA}, size/4)}
		var clean writerAtBuffer
		opts.Label, opts.Time = "GARBAGE", testTime
		if err := Build(&garbage, 0, size, src, opts); err != nil {
			t.Fatal(err)
		}
		if err := Build(&clean, 0, size, src, opts); err != nil {
			t.Fatal(err)
		}
		g, _ := ComputeGeometry(size, opts)
		root, err := scanTree(src)
		if err != nil {
			t.Fatal(err)
		}
		u := treeUsage(root, g.ClusterBytes(), g.FATType == 32, true)
		used := int64(g.DataSector())*sectorSize + int64(u.clusters)*g.ClusterBytes()
		if !bytes.Equal(garbage.b[:used], clean.b[:used]) {
			t.Errorf("FAT%d: old bytes show through in the used part of the filesystem", g.FATType)
		}
		if garbage.b[used] != 0xE5 {
			t.Errorf("FAT%d: the first free cluster was written", g.FATType)
		}
	}
}
