package lvm

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type memPV struct{ b []byte }

func (m *memPV) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
func (m *memPV) ReadAt(p []byte, off int64) (int, error)  { return copy(p, m.b[off:]), nil }

func id(c byte) string {
	var b [32]byte
	for i := range b {
		b[i] = c + byte(i)
	}
	return FormatID(b)
}

// testVG is two PVs (64 and 32 MiB) with an LV on the first and one
// spanning both.
func testVG(t *testing.T) *VG {
	t.Helper()
	vg, err := NewVG("vg0", id(1), DefaultExtentSize)
	if err != nil {
		t.Fatal(err)
	}
	vg.CreationHost, vg.CreationTime, vg.Description = "vmdb2", 1700000000, "Write from vmdb2 lvcreate."
	for i, size := range []int64{64 << 20, 32 << 20} {
		if err := vg.AddPV(id(byte(10*(i+1))), "/dev/test", size); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vg.CreateLV("root", id(50), Extents(40<<20, vg.ExtentSize), 1700000000, "vmdb2"); err != nil {
		t.Fatal(err)
	}
	if _, err := vg.CreateLV("big", id(60), 0, 1700000000, "vmdb2"); err != nil {
		t.Fatal(err)
	}
	return vg
}

func TestAllocationIsLinearInPVOrder(t *testing.T) {
	vg := testVG(t)
	if vg.PVs[0].PECount != 15 || vg.PVs[1].PECount != 7 {
		t.Fatalf("pe_count %d %d, pvcreate gives 15 and 7", vg.PVs[0].PECount, vg.PVs[1].PECount)
	}
	want := []Segment{{0, 5, "pv0", 10}, {5, 7, "pv1", 0}}
	if got := vg.LVs[1].Segments; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("big's segments %+v, want %+v", got, want)
	}
	if vg.Seqno != 3 || vg.FreeExtents() != 0 {
		t.Errorf("seqno %d free %d", vg.Seqno, vg.FreeExtents())
	}
	r := vg.Ranges(&vg.LVs[1])
	if r[0] != (Range{0, PEStart + 10*4<<20, 5 * 4 << 20}) || r[1] != (Range{1, PEStart, 7 * 4 << 20}) {
		t.Errorf("ranges %+v", r)
	}
	if _, err := vg.CreateLV("more", id(70), 1, 0, ""); err == nil || !strings.Contains(err.Error(), "insufficient free space") {
		t.Errorf("full VG: %v", err)
	}
	if _, err := vg.CreateLV("root", id(70), 1, 0, ""); err == nil {
		t.Errorf("duplicate LV accepted")
	}
}

// TestCheckPV: metadata that puts extents beyond the device is refused.
func TestCheckPV(t *testing.T) {
	vg := testVG(t)
	if err := vg.CheckPV(0, 64<<20); err != nil {
		t.Error(err)
	}
	if err := vg.CheckPV(0, 60<<20); err == nil {
		t.Error("15 extents fit in 60 MiB")
	}
	vg.PVs[1].PECount = 1 << 40
	if err := vg.CheckPV(1, 32<<20); err == nil {
		t.Error("2^40 extents fit")
	}
}

func TestRoundTrip(t *testing.T) {
	vg := testVG(t)
	for i := range vg.PVs {
		m := &memPV{b: make([]byte, vg.PVs[i].DevSize)}
		if err := WritePV(m, 0, vg, i); err != nil {
			t.Fatal(err)
		}
		l, got, err := ReadPV(m, int64(len(m.b)))
		if err != nil {
			t.Fatal(err)
		}
		if l.UUID != vg.PVs[i].UUID || l.DevSize != vg.PVs[i].DevSize || l.DataStart != PEStart || len(l.MDAs) != 1 || l.MDAs[0] != [2]int64{MDAStart, mdaSize} {
			t.Errorf("label %+v", l)
		}
		if !bytes.Equal(got.Text(), vg.Text()) {
			t.Errorf("read back:\n%s\nwrote:\n%s", got.Text(), vg.Text())
		}
	}
}

// TestChecksums: lvm's CRC of a known input, and a corrupted label or
// metadata is refused.
func TestChecksums(t *testing.T) {
	if got := checksum([]byte("123456789")); got != 0x4991cf02 {
		t.Errorf("checksum = %#x", got)
	}
	vg := testVG(t)
	for _, at := range []int64{SectorSize + 100, MDAStart + 30, MDAStart + mdaHeaderSize + 20} {
		m := &memPV{b: make([]byte, vg.PVs[0].DevSize)}
		if err := WritePV(m, 0, vg, 0); err != nil {
			t.Fatal(err)
		}
		m.b[at] ^= 1
		if _, _, err := ReadPV(m, int64(len(m.b))); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("flipped byte %d: %v", at, err)
		}
	}
}

// TestGoldenText: the metadata text of a fixed VG.
func TestGoldenText(t *testing.T) {
	got := testVG(t).Text()
	golden := filepath.Join("testdata", "vg0.txt")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("metadata text differs from %s (UPDATE_GOLDEN=1 rewrites it):\n%s", golden, got)
	}
}

// TestParsesToolOutput: the reader takes what lvm itself writes: a
// vgcfgbackup file with indentation, comments and several segments.
func TestParsesToolOutput(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "vgcfgbackup.txt"))
	if err != nil {
		t.Fatal(err)
	}
	vg, err := ParseText(string(text))
	if err != nil {
		t.Fatal(err)
	}
	lv := vg.LV("root")
	if vg.Name != "vg0" || vg.ExtentSize != 4<<20 || len(vg.PVs) != 2 || lv == nil || len(lv.Segments) != 2 || lv.Segments[1] != (Segment{15, 2, "pv1", 0}) {
		t.Errorf("parsed %+v", vg)
	}
}

// TestReadsToolPV: the reader checks and reads the label, header and
// metadata lvm2 2.03 itself wrote (pvcreate, vgcreate, then vgcfgrestore
// of an LV over two PVs), so the CRCs and layout agree with lvm's.
func TestReadsToolPV(t *testing.T) {
	head, err := os.ReadFile(filepath.Join("testdata", "lvm2-pv0-head.bin"))
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 64<<20)
	copy(img, head)
	l, vg, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if l.UUID != "FQeAd6-uSW5-LVcB-RIJv-QgwO-gBxg-2JsSC0" || l.DevSize != 64<<20 || vg.Seqno != 2 || vg.LV("root") == nil || len(vg.LV("root").Segments) != 2 {
		t.Errorf("label %+v vg %+v", l, vg)
	}
	// Written again by this package, the metadata text is lvm's but for
	// the two lines naming the program and the build host's kernel.
	text := head[MDAStart+0x600:]
	text = text[:bytes.IndexByte(text, 0)]
	wantLines, gotLines := strings.Split(string(text), "\n"), strings.Split(string(vg.Text()), "\n")
	if len(wantLines) != len(gotLines) {
		t.Fatalf("%d lines, lvm wrote %d:\n%s", len(gotLines), len(wantLines), vg.Text())
	}
	for i := range wantLines {
		w, g := wantLines[i], gotLines[i]
		if w != g && !strings.HasPrefix(w, "# Generated by LVM2") && !strings.HasPrefix(w, "creation_host = \"vm\"\t# Linux") {
			t.Errorf("line %d: %q, lvm wrote %q", i+1, g, w)
		}
	}
	// The label sector is lvm's, byte for byte (the PV's only own field
	// is its UUID).
	pv := vg.PVs[0]
	mine, err := headerArea(vg, &pv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine[SectorSize:2*SectorSize], head[SectorSize:2*SectorSize]) {
		t.Errorf("label sector differs from lvm's:\n%x\n%x", mine[SectorSize:SectorSize+160], head[SectorSize:SectorSize+160])
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1G": 1 << 30, "512": 512 << 20, "512m": 512 << 20, "1.5g": 3 << 29, "2048s": 1 << 20, "4096B": 4096, "1t": 1 << 40, "10K": 10 << 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1G", "1x", "G", "1e3", "NaN", "inf", "1GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if !IsFill("FILL") || !IsFill("100%free") || IsFill("100%") {
		t.Errorf("IsFill")
	}
}

func TestNames(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "-x", "a/b", "a b", "snapshot", "pvmove0", "x_mlog", "a_rimage_0", strings.Repeat("x", 128)} {
		if CheckLVName(bad) == nil {
			t.Errorf("LV name %q accepted", bad)
		}
	}
	for _, good := range []string{"root", "a-b", "A.b+c_d", "swap_1"} {
		if err := CheckLVName(good); err != nil {
			t.Errorf("LV name %q: %v", good, err)
		}
	}
	if CheckVGName("vg/0") == nil || CheckVGName("vg0") != nil {
		t.Errorf("VG names")
	}
}

// FuzzReadPV: the reader of untrusted images never panics, and what it
// accepts it can write back.
func FuzzReadPV(f *testing.F) {
	vg, _ := NewVG("vg0", id(1), DefaultExtentSize)
	vg.AddPV(id(2), "/dev/x", 16<<20)
	vg.CreateLV("lv", id(3), 2, 0, "h")
	buf, _ := headerArea(vg, &vg.PVs[0])
	f.Add(buf[:MDAStart+2048])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, got, err := ReadPV(bytes.NewReader(data), int64(len(data)))
		if err == nil && got != nil {
			if _, err := ParseText(string(got.Text())); err != nil {
				t.Fatalf("cannot read back what was read: %v", err)
			}
		}
		ParseText(string(data))
	})
}
