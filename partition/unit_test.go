package partition

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Pure unit tests: no external tools, run with -short.

func TestParseImageSize(t *testing.T) {
	good := map[string]int64{
		"1024":      1024,
		"1000":      1024, // qemu-img's raw driver rounds up to 512
		"1":         512,
		"4G":        4 << 30,
		"4g":        4 << 30,
		"2000M":     2000 << 20,
		"1500m":     1500 << 20,
		"20G":       20 << 30,
		"1.5G":      3 << 29,
		"1.5k":      1536,
		"0.1k":      512, // 102.4 -> 102 bytes -> one sector
		"100k":      100 << 10,
		"100K":      100 << 10,
		"1T":        1 << 40,
		"1P":        1 << 50,
		"1E":        1 << 60,
		"4GiB":      4 << 30,
		"512MiB":    512 << 20,
		"4KiB":      4096,
		"1TiB":      1 << 40,
		"1GB":       1000000000,
		"1MB":       1000448, // 1000000 rounded up to 512
		"2kB":       2048,
		"4096B":     4096,
		"4096b":     4096,
		"0x1000":    4096,
		"1.25M":     1310720,
		"7E":        7 << 60,
		"8388607T":  8388607 << 40,
		"3.0000001": 0, // placeholder, removed below
	}
	delete(good, "3.0000001")
	for in, want := range good {
		got, err := ParseImageSize(in)
		if err != nil || got != want {
			t.Errorf("ParseImageSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := []string{"", " 4G", "4G ", "4 G", "-1", "-4G", "+4G", "0", "0G", "0.0001k", "G", "4X", "4GB2",
		"4Gi", "4GIB2", "1.5", "1.5B", "8E", "9E", "99999999999999999999", "1e3", "nan", "inf", "0x", "0x1G",
		"1..5G", ".5G", "4\n"}
	for _, in := range bad {
		if got, err := ParseImageSize(in); err == nil {
			t.Errorf("ParseImageSize(%q) = %d, want an error", in, got)
		} else if !strings.Contains(err.Error(), "image size") {
			t.Errorf("ParseImageSize(%q): unclear error %v", in, err)
		}
	}
}

func TestParsePosition(t *testing.T) {
	const length = 8388608 // 4 GiB of 512-byte sectors
	cases := []struct {
		in       string
		sector   int64
		lo, hi   int64
		ok       bool
		errMatch string
	}{
		{"0%", 0, 0, 41942, true, ""},
		{"50%", 4194303, 4194303 - 41942, 4194303 + 41942, true, ""},
		{"100%", length - 1, length - 41943, length - 1, true, ""},
		{"1MiB", 2048, 2048, 2048, true, ""},
		{"1mib", 2048, 2048, 2048, true, ""},
		{"2048s", 2048, 2048, 2048, true, ""},
		{"-1s", length - 1, length - 1, length - 1, true, ""},
		{"-1MiB", length - 2048, length - 2048, length - 2048, true, ""},
		{"1G", 1953125, 1953125 - 976561, 1953125 + 976561, true, ""},
		{"1GB", 1953125, 1953125 - 976561, 1953125 + 976561, true, ""},
		{"10", 19531, 19531 - 976, 19531 + 976, true, ""},
		{"10M", 19531, 19531 - 976, 19531 + 976, true, ""},
		{"4096B", 8, 8, 8, true, ""},
		{"1kB", 1, 1, 1, true, ""},
		{"4GiB", 0, 0, 0, false, "outside"},
		{"5GB", 0, 0, 0, false, "outside"},
		{"0.5GB", 0, 0, 0, false, "smaller unit"},
		{"abc", 0, 0, 0, false, "invalid number"},
		{"", 0, 0, 0, false, "empty"},
		{"1,2,3", 0, 0, 0, false, "cylinder"},
		{"3cyl", 0, 0, 0, false, "cylinder"},
	}
	for _, c := range cases {
		p, err := parsePosition(c.in, 512, length)
		if !c.ok {
			if err == nil || !strings.Contains(err.Error(), c.errMatch) {
				t.Errorf("parsePosition(%q) = %+v, %v; want error containing %q", c.in, p, err, c.errMatch)
			}
			continue
		}
		if err != nil || p.sector != c.sector || p.fuzz != (span{c.lo, c.hi}) {
			t.Errorf("parsePosition(%q) = %+v, %v; want %d in [%d,%d]", c.in, p, err, c.sector, c.lo, c.hi)
		}
	}
}

func TestEndsWithIECParted(t *testing.T) {
	for s, want := range map[string]bool{"513MiB": true, "2048kib": true, "2048KiB": false, "14mib": false, "1GiB": true, "100%": false, "1M": false} {
		if got := endsWithIECParted(s); got != want {
			t.Errorf("endsWithIECParted(%q) = %v", s, got)
		}
	}
}

func TestAlignment(t *testing.T) {
	a := newAlignment(-1, 2048)
	if a.offset != 2047 {
		t.Fatalf("offset %d", a.offset)
	}
	r := span{0, 1 << 30}
	if got := a.alignNearest(r, 1953125); got != 1953791 {
		t.Errorf("nearest end = %d", got)
	}
	if got := newAlignment(0, 2048).alignNearest(span{34, 41942}, 0); got != 2048 {
		t.Errorf("nearest start = %d", got)
	}
	if got := newAlignment(0, 2048).alignNearest(span{0, 1000}, 900); got != 0 {
		t.Errorf("in-range nearest = %d", got)
	}
	if _, ok := newAlignment(0, 4).intersect(newAlignment(1, 2)); ok {
		t.Error("incompatible alignments intersected")
	}
	if x, ok := newAlignment(0, 2048).intersect(alignAny); !ok || x != newAlignment(0, 2048) {
		t.Errorf("intersect with any = %+v %v", x, ok)
	}
	if x, ok := newAlignment(1, 4).intersect(newAlignment(0, 3)); !ok || x != newAlignment(9, 12) {
		t.Errorf("CRT = %+v %v", x, ok)
	}
}

func TestGUID(t *testing.T) {
	g := mustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	if g.String() != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
		t.Error(g.String())
	}
	d := g.toDisk()
	if d[0] != 0x28 || d[3] != 0xc1 || d[4] != 0x1f || d[6] != 0xd2 || d[8] != 0xba {
		t.Errorf("disk encoding % x", d)
	}
	if guidFromDisk(d[:]) != g {
		t.Error("round trip")
	}
	if _, err := ParseGUID("nope"); err == nil {
		t.Error("bad GUID accepted")
	}
	a, b := DerivedPartitionGUID(g, 1), DerivedPartitionGUID(g, 2)
	if a == b || a != DerivedPartitionGUID(g, 1) || a[6]>>4 != 5 {
		t.Errorf("derived GUIDs %v %v", a, b)
	}
}

func TestCHS(t *testing.T) {
	if got := chs(2048, 4, 32); got != [3]byte{0, 1, 16} {
		t.Errorf("chs(2048) = % x", got)
	}
	if got := chs(1<<22, 4, 32); got != [3]byte{3, 0xe0, 0xff} {
		t.Errorf("chs(big) = % x", got)
	}
}

// TestRoundTrip writes tables with this package only and reads them back.
func TestRoundTrip(t *testing.T) {
	for _, label := range []string{"msdos", "gpt"} {
		d, img := freshDisk(t, 64<<20)
		if d.Label() != "" {
			t.Errorf("fresh image has label %q", d.Label())
		}
		ids := LabelIDs{DiskGUID: mustGUID("01234567-89AB-CDEF-0123-456789ABCDEF"), MBRSignature: 0xdeadbeef,
			PartitionGUID: func(n int) GUID { return GUID{15: byte(n)} }}
		if err := d.MakeLabel(label, ids); err != nil {
			t.Fatal(err)
		}
		p1, err := d.MakePart("primary", "fat32", "1MiB", "16MiB")
		if err != nil {
			t.Fatal(err)
		}
		p2, err := d.MakePart("primary", "ext4", "16MiB", "100%")
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SetFlag(1, "esp", true); err != nil {
			t.Fatal(err)
		}
		if err := d.SetFlag(2, "boot", true); err != nil {
			t.Fatal(err)
		}
		want := d.Partitions()
		d.Close()
		if p1.StartSector != 2048 || p1.SizeSectors != 30720 || p1.Offset != 1<<20 || p2.StartSector != 32768 {
			t.Errorf("%s: unexpected geometry %+v %+v", label, p1, p2)
		}
		d, err = Open(img)
		if err != nil {
			t.Fatal(err)
		}
		got := d.Partitions()
		if d.Label() != label || len(got) != 2 {
			t.Fatalf("%s: reopened as %q with %d partitions", label, d.Label(), len(got))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: partition %d: wrote %+v, read %+v", label, i+1, want[i], got[i])
			}
		}
		if label == "msdos" {
			if d.MBRSignature() != 0xdeadbeef || got[0].MBRType != mbrESP || !got[1].Bootable || got[1].MBRType != mbrLinux {
				t.Errorf("msdos fields: %x %+v", d.MBRSignature(), got)
			}
		} else {
			if d.DiskGUID() != ids.DiskGUID || got[0].TypeGUID != TypeEFISystem || got[1].TypeGUID != TypeEFISystem ||
				got[1].GUID != (GUID{15: 2}) || got[0].Name != "primary" {
				t.Errorf("gpt fields: %v %+v", d.DiskGUID(), got)
			}
		}
		d.Close()
	}
}

func TestErrors(t *testing.T) {
	d, _ := freshDisk(t, 100<<20)
	defer d.Close()
	if _, err := d.MakePart("primary", "ext4", "1MiB", "2MiB"); err == nil || !strings.Contains(err.Error(), "mklabel") {
		t.Errorf("mkpart without label: %v", err)
	}
	for _, k := range []string{"sun", "loop", "bogus"} {
		if err := d.MakeLabel(k, testIDs); err == nil || !strings.Contains(err.Error(), "msdos and gpt") {
			t.Errorf("mklabel %s: %v", k, err)
		}
	}
	if err := d.MakeLabel("msdos", LabelIDs{}); err == nil {
		t.Error("zero MBR signature accepted")
	}
	if err := d.MakeLabel("msdos", testIDs); err != nil {
		t.Fatal(err)
	}
	check := func(err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("no error, want %q", want)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
	_, err := d.MakePart("logical", "ext4", "1MiB", "2MiB")
	check(err, "not supported yet")
	_, err = d.MakePart("primary", "vfat", "1MiB", "2MiB")
	check(err, "fat32")
	_, err = d.MakePart("primary", "ext4", "10MiB", "5MiB")
	check(err, "before the start")
	_, err = d.MakePart("primary", "ext4", "1MiB", "200MiB")
	check(err, "outside of the device")
	if _, err := d.MakePart("primary", "ext4", "1MiB", "50MiB"); err != nil {
		t.Fatal(err)
	}
	_, err = d.MakePart("primary", "ext4", "20MiB", "60MiB")
	check(err, "overlaps partition 1", "1MiB–50MiB")
	for i := 0; i < 3; i++ {
		if _, err := d.MakePart("primary", "ext4", "", ""); err == nil {
			t.Error("empty positions accepted")
		}
	}
	_, _ = d.MakePart("primary", "ext4", "50MiB", "60MiB")
	_, _ = d.MakePart("primary", "ext4", "60MiB", "70MiB")
	_, _ = d.MakePart("primary", "ext4", "70MiB", "80MiB")
	_, err = d.MakePart("primary", "ext4", "80MiB", "90MiB")
	check(err, "4 primary")
	check(d.SetFlag(9, "boot", true), "doesn't exist")
	check(d.SetFlag(1, "bios_grub", true), "only on gpt", "esp")
	check(d.SetFlag(1, "frobnicate", true), "unknown flag", "lvm")
	if len(d.Partitions()) != 4 {
		t.Errorf("failed calls changed the table: %+v", d.Partitions())
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.img")); err == nil {
		t.Error("missing file opened")
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("directory opened")
	}
	img := filepath.Join(t.TempDir(), "tiny.img")
	os.WriteFile(img, []byte("x"), 0o644)
	if _, err := Open(img); err == nil {
		t.Error("1-byte image opened")
	}
	if err := CreateImage(img, 0); err == nil {
		t.Error("zero-size image created")
	}
}

func TestCheckImageSize(t *testing.T) {
	for _, in := range []string{"1P", "4G", "1000TB"} {
		n, _ := ParseImageSize(in)
		if CheckImageSize(in, n) != nil {
			t.Errorf("CheckImageSize(%q) refused", in)
		}
	}
	for _, in := range []string{"100P", "2P", "1E", "7E"} {
		n, err := ParseImageSize(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckImageSize(in, n); err == nil || !strings.Contains(err.Error(), "PiB") {
			t.Errorf("CheckImageSize(%q) = %v, want a refusal", in, err)
		}
	}
}

// TestOpenHugeGPTEntries: a GPT header whose entries are 2 GiB each made
// Open allocate the whole array (8 TiB for 4096 entries): the Go runtime
// dies of that, no recover possible. The entry size is checked first now.
func TestOpenHugeGPTEntries(t *testing.T) {
	img := labelledImage(t, "gpt")
	h := img[512:1024]
	binary.LittleEndian.PutUint32(h[84:], 0x7ffffff8) // entry size
	fixGPTChecksums(h, img)
	path := filepath.Join(t.TempDir(), "huge.img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "entries of 2147483640 bytes are not supported") {
		t.Fatalf("got %v", err)
	}
}

// TestOpenMsdosPartitionOutsideDisk: an msdos entry beyond the end of the
// image was accepted (the GPT reader refused it), so that a later mkfs
// would write far past the image's end. parted refuses it too.
func TestOpenMsdosPartitionOutsideDisk(t *testing.T) {
	for _, c := range []struct {
		start, size uint32
		want        string
	}{
		{34, 1 << 30, "partition 1 (sectors 34..1073741857) lies outside the disk (256 sectors)"},
		{1000, 10, "partition 1 (sectors 1000..1009) lies outside the disk"},
		{34, 0, "partition 1 has no sectors"},
	} {
		img := labelledImage(t, "msdos")
		e := img[446:462]
		binary.LittleEndian.PutUint32(e[8:], c.start)
		binary.LittleEndian.PutUint32(e[12:], c.size)
		path := filepath.Join(t.TempDir(), "outside.img")
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("start %d size %d: got %v, want %q", c.start, c.size, err, c.want)
		}
	}
}

// TestPartNames: mkpart's first argument is the msdos partition type
// (only primary, in any case) or the gpt partition's one-word name.
func TestPartNames(t *testing.T) {
	for _, c := range []struct {
		label, arg, name, want string
	}{
		{"msdos", " Primary ", "", ""},
		{"msdos", "extended", "", "not supported yet"},
		{"msdos", "bogus", "", "must be primary"},
		{"gpt", "EFI", "EFI", ""},
		{"gpt", "EFI system", "", `use a name without spaces (e.g. "EFI-system")`},
	} {
		d, _ := freshDisk(t, 10<<20)
		if err := d.MakeLabel(c.label, testIDs); err != nil {
			t.Fatal(err)
		}
		p, err := d.MakePart(c.arg, "ext4", "1MiB", "5MiB")
		d.Close()
		switch {
		case c.want == "" && (err != nil || p.Name != c.name):
			t.Errorf("%s %q: %+v, %v", c.label, c.arg, p, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %q: error %v, want %q", c.label, c.arg, err, c.want)
		}
	}
}

// freshDisk creates an empty image of size bytes and opens it; it returns
// the disk and the image's path.
func freshDisk(t *testing.T, size int64) (*Disk, string) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "x.img")
	if err := CreateImage(img, size); err != nil {
		t.Fatal(err)
	}
	d, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	return d, img
}
