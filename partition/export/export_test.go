package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// region is a byte range the test image has data in.
type region struct {
	off, n int64
	zeros  bool // written as zeros: allocated, but reads as a hole would
}

// testImageSize is not a multiple of the block size, so the last block of
// the map is short.
const testImageSize = 9<<20 + 1000

var testRegions = []region{
	{off: 0, n: 300 << 10},
	{off: 2<<20 + 100, n: 1<<20 + 7}, // unaligned on both ends
	{off: 5 << 20, n: 1 << 20, zeros: true},
	{off: testImageSize - 5000, n: 5000}, // up to the end
}

// makeImage writes a sparse image of testImageSize bytes with data only in
// testRegions, and returns its path and contents. Pieces are 1 MiB here,
// so the image has pieces of data, of holes, of written zeros and a short
// last one.
func makeImage(t *testing.T) (string, []byte) {
	t.Helper()
	old := chunkSize
	chunkSize = 1 << 20
	t.Cleanup(func() { chunkSize = old })
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := make([]byte, testImageSize)
	rng := rand.New(rand.NewChaCha8([32]byte{13}))
	for _, r := range testRegions {
		b := want[r.off : r.off+r.n]
		if !r.zeros {
			for i := range b {
				b[i] = byte(rng.Uint32() % 7) // compressible, not trivially
			}
		}
		if _, err := f.WriteAt(b, r.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(testImageSize); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// export writes the image to dir/name and returns the export's bytes.
func export(t *testing.T, image, dir, name string) []byte {
	t.Helper()
	target := filepath.Join(dir, name)
	f, err := ForName(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(context.Background(), image, Target{Path: target, Format: f}, Options{ID: testID}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// testID stands in for the build's identifiers.
func testID(purpose string) [16]byte {
	s := sha256.Sum256([]byte(purpose))
	return [16]byte(s[:16])
}

func decompress(t *testing.T, suffix string, data []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch suffix {
	case ".img.gz":
		r, err = gzip.NewReader(bytes.NewReader(data)) // reads every member
	case ".img.xz":
		r, err = xz.NewReader(bytes.NewReader(data)) // reads every stream
	case ".img.zst":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data)) // reads every frame
		if err == nil {
			defer d.Close()
			r = d
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompressing %s: %v", suffix, err)
	}
	return out
}

func TestCompressedExportsDecompressToTheImage(t *testing.T) {
	image, want := makeImage(t)
	for _, suffix := range []string{".img.gz", ".img.xz", ".img.zst"} {
		t.Run(suffix, func(t *testing.T) {
			dir := t.TempDir()
			first := export(t, image, dir, "a"+suffix)
			if got := decompress(t, suffix, first); !bytes.Equal(got, want) {
				t.Fatalf("decompressed %d bytes, differ from the image's %d", len(got), len(want))
			}
			if second := export(t, image, dir, "b"+suffix); !bytes.Equal(first, second) {
				t.Errorf("two exports of one image differ")
			}
			if len(first) >= len(want)/4 {
				t.Errorf("%d compressed bytes for a mostly empty %d-byte image", len(first), len(want))
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, ".vmdb2-export-*"))
			if len(leftovers) > 0 {
				t.Errorf("left behind: %v", leftovers)
			}
		})
	}
}

func TestCompressedOutputDoesNotDependOnThreads(t *testing.T) {
	image, _ := makeImage(t)
	img, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	var outs [][]byte
	for _, workers := range []int{1, 3} {
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		j := &job{image: img, size: testImageSize, tmp: out}
		if err := compressPieces(context.Background(), j, zstdChunk, workers); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(out.Name())
		out.Close()
		outs = append(outs, data)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Errorf("1 and 3 workers gave different streams (%d and %d bytes)", len(outs[0]), len(outs[1]))
	}
}

// bmapFile is what the test reads of a block map.
type bmapFile struct {
	Version      string `xml:"version,attr"`
	ImageSize    string `xml:"ImageSize"`
	BlockSize    string `xml:"BlockSize"`
	BlocksCount  string `xml:"BlocksCount"`
	Mapped       string `xml:"MappedBlocksCount"`
	ChecksumType string `xml:"ChecksumType"`
	FileChecksum string `xml:"BmapFileChecksum"`
	Ranges       []struct {
		Chksum string `xml:"chksum,attr"`
		Blocks string `xml:",chardata"`
	} `xml:"BlockMap>Range"`
}

func TestBmapListsTheDataRanges(t *testing.T) {
	image, content := makeImage(t)
	data := export(t, image, t.TempDir(), "disk.bmap")
	var m bmapFile
	if err := xml.Unmarshal(data, &m); err != nil {
		t.Fatalf("not XML: %v\n%s", err, data)
	}
	num := func(s string) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("%q is not a number", s)
		}
		return n
	}
	if m.Version != "2.0" || num(m.BlockSize) != 4096 || num(m.ImageSize) != testImageSize ||
		num(m.BlocksCount) != (testImageSize+4095)/4096 || strings.TrimSpace(m.ChecksumType) != "sha256" {
		t.Errorf("header: %+v", m)
	}
	var got []blockRange
	mapped := int64(0)
	for _, r := range m.Ranges {
		first, last, ok := strings.Cut(strings.TrimSpace(r.Blocks), "-")
		if !ok {
			last = first
		}
		br := blockRange{num(first), num(last)}
		got = append(got, br)
		mapped += br.last - br.first + 1
		end := min((br.last+1)*4096, testImageSize)
		sum := sha256.Sum256(content[br.first*4096 : end])
		if r.Chksum != hex.EncodeToString(sum[:]) {
			t.Errorf("range %v: checksum %s is not the sha256 of its bytes", br, r.Chksum)
		}
	}
	if want := expectedRanges(); !equalRanges(got, want) {
		t.Errorf("ranges %v, want the data ranges %v", got, want)
	}
	if num(m.Mapped) != mapped {
		t.Errorf("MappedBlocksCount %s, the ranges hold %d", m.Mapped, mapped)
	}
	fileSum := strings.TrimSpace(m.FileChecksum)
	zeroed := bytes.Replace(data, []byte(fileSum), bytes.Repeat([]byte("0"), 64), 1)
	if sum := sha256.Sum256(zeroed); hex.EncodeToString(sum[:]) != fileSum {
		t.Errorf("BmapFileChecksum %s is not the file's sha256 with it zeroed", fileSum)
	}
}

// expectedRanges are the test image's data regions in whole blocks, merged
// where they touch.
func expectedRanges() []blockRange {
	var rs []blockRange
	for _, r := range testRegions {
		br := blockRange{r.off / 4096, (r.off+r.n+4095)/4096 - 1}
		if n := len(rs); n > 0 && br.first <= rs[n-1].last+1 {
			rs[n-1].last = br.last
			continue
		}
		rs = append(rs, br)
	}
	return rs
}

func equalRanges(a, b []blockRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestForName(t *testing.T) {
	for name, suffix := range map[string]string{
		"x.qcow2": ".qcow2", "dir/x.vmdk": ".vmdk", "x.vhdx": ".vhdx", "x.img.zst": ".img.zst",
		"x.img.xz": ".img.xz", "x.img.gz": ".img.gz", "x.bmap": ".bmap",
	} {
		f, err := ForName(name)
		if err != nil || f.Suffix != suffix {
			t.Errorf("ForName(%q) = %v, %v; want %s", name, f, err, suffix)
		}
	}
	for _, name := range []string{"x.img", "x.gz", "x.tar.xz", ".qcow2", "dir/.bmap", "x.QCOW2"} {
		if f, err := ForName(name); err == nil {
			t.Errorf("ForName(%q) = %s, want a refusal", name, f.Suffix)
		} else if !strings.Contains(err.Error(), ".qcow2 .vmdk .vhdx .img.zst .img.xz .img.gz .bmap") {
			t.Errorf("ForName(%q): %v does not list the suffixes", name, err)
		}
	}
}

func TestCheckRefusesBadTargets(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.img")
	os.WriteFile(out, nil, 0o644)
	link := filepath.Join(dir, "link.img.gz")
	if err := os.Symlink("disk.img", link); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "d.qcow2"), 0o755)
	existing := filepath.Join(dir, "existing.bmap")
	os.WriteFile(existing, nil, 0o644)
	readOnly := filepath.Join(dir, "ro")
	os.Mkdir(readOnly, 0o555)
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"x.raw"}, "cannot tell the format"},
		{[]string{filepath.Join(dir, "a.bmap"), filepath.Join(dir, ".", "a.bmap")}, "the same file as --export"},
		{[]string{link}, "the same file as --output"},
		{[]string{filepath.Join(dir, "d.qcow2")}, "not a regular file"},
		{[]string{filepath.Join(dir, "missing", "x.bmap")}, "its directory"},
		{[]string{filepath.Join(dir, "disk.img", "x.bmap")}, "not a directory"},
		{[]string{"/proc/x.bmap"}, "cannot create files in /proc"},
	} {
		_, err := Check(c.paths, map[string]string{out: "--output"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%v) = %v, want %q", c.paths, err, c.want)
		}
	}
	if os.Geteuid() != 0 {
		if _, err := Check([]string{filepath.Join(readOnly, "x.bmap")}, nil); err == nil {
			t.Errorf("Check accepted a target in a read-only directory")
		}
	}
	targets, err := Check([]string{filepath.Join(dir, "ok.img.xz"), existing}, map[string]string{out: "--output"})
	if err != nil || len(targets) != 2 || targets[0].Format.Suffix != ".img.xz" {
		t.Errorf("Check of good targets = %v, %v", targets, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".vmdb2-export-*")); len(left) > 0 {
		t.Errorf("Check left %v", left)
	}
}

func TestFailedExportLeavesNothing(t *testing.T) {
	image, _ := makeImage(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "x.img.zst")
	fail := &Format{Suffix: ".img.zst", write: func(ctx context.Context, j *job) error {
		j.tmp.WriteString("partial")
		return io.ErrUnexpectedEOF
	}}
	if err := Write(context.Background(), image, Target{Path: target, Format: fail}, Options{}); err == nil {
		t.Fatal("Write succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	zst, _ := ForName(target)
	if err := Write(ctx, image, Target{Path: target, Format: zst}, Options{}); err == nil {
		t.Fatal("Write succeeded when cancelled")
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestWithCID: the vmdk's CID line gets 8 hex digits whatever qemu-img
// printed (it drops leading zeros: 7 digits in one export of 16), within
// the descriptor's length, and what qemu-img's own rewrite of the id left
// after the text's NUL is zeroed; a descriptor without a CID line, with a
// bad one or without the padding to grow into is refused.
func TestWithCID(t *testing.T) {
	pad := func(s string, n int) []byte { return append([]byte(s), make([]byte, n)...) }
	for _, c := range []struct {
		name, desc string
		padding    int
		want       string
	}{
		{"8 digits", "version=1\nCID=e6d10b77\nparentCID=ffffffff\n", 8, "version=1\nCID=0000002a\nparentCID=ffffffff\n"},
		{"7 digits", "version=1\nCID=6d10b77\nparentCID=ffffffff\n", 8, "version=1\nCID=0000002a\nparentCID=ffffffff\n"},
		{"1 digit", "version=1\nCID=7\nparentCID=ffffffff\n", 8, "version=1\nCID=0000002a\nparentCID=ffffffff\n"},
		{"old text after the NUL", "version=1\nCID=6d10b77\nparentCID=ffffffff\n\x00\"\n", 8, "version=1\nCID=0000002a\nparentCID=ffffffff\n"},
		{"no CID", "version=1\nparentCID=ffffffff\n", 8, ""},
		{"9 digits", "version=1\nCID=123456789\n", 8, ""},
		{"not hex", "version=1\nCID=xyz\n", 8, ""},
		{"no room", "version=1\nCID=6d10b77\n", 0, ""},
	} {
		in := pad(c.desc, c.padding)
		got, err := withCID(in, 42)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: no error, got %q", c.name, got)
			}
			continue
		}
		if err != nil || len(got) != len(in) || string(bytes.TrimRight(got, "\x00")) != c.want {
			t.Errorf("%s: %q (%v), want %q in %d bytes", c.name, got, err, c.want, len(in))
		}
	}
}
