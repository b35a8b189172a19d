package grub

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCoreELF is the header of a 32-bit big-endian PowerPC ELF followed by
// n-52 bytes of 0xAA.
func fakeCoreELF(n int) []byte {
	b := bytes.Repeat([]byte{0xAA}, n)
	copy(b, "\x7fELF\x01\x02\x01")
	b[16], b[17], b[18], b[19] = 0, 2, 0, 20 // ET_EXEC, EM_PPC
	return b
}

func TestCheckCoreELF(t *testing.T) {
	if err := checkCoreELF(fakeCoreELF(4096)); err != nil {
		t.Fatal(err)
	}
	le := fakeCoreELF(4096)
	le[5] = 1
	x86 := fakeCoreELF(4096)
	x86[19] = 3
	for name, img := range map[string][]byte{
		"empty": nil, "short": fakeCoreELF(40), "PE": append([]byte("MZ"), make([]byte, 100)...),
		"little endian": le, "i386": x86,
	} {
		if err := checkCoreELF(img); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// prepImage makes a 4 MiB image file full of 0x55 (old content) and
// returns its path.
func prepImage(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0x55}, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWritePReP(t *testing.T) {
	img := prepImage(t)
	core := fakeCoreELF(300 << 10)
	const off, size = 1 << 20, 2 << 20
	if err := WritePReP(img, off, size, core); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(img)
	if len(got) != 4<<20 {
		t.Fatalf("image size changed to %d", len(got))
	}
	if !bytes.Equal(got[off:off+len(core)], core) {
		t.Error("core.elf not at the partition's start")
	}
	if bytes.ContainsFunc(got[off+len(core):off+size], func(r rune) bool { return r != 0 }) {
		t.Error("the rest of the partition is not zeroed")
	}
	for _, r := range [][2]int{{0, off}, {off + size, 4 << 20}} {
		if bytes.ContainsFunc(got[r[0]:r[1]], func(c rune) bool { return c != 0x55 }) {
			t.Errorf("bytes %d-%d outside the partition changed", r[0], r[1])
		}
	}
	// Twice gives the same bytes.
	if err := WritePReP(img, off, size, core); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(img); !bytes.Equal(again, got) {
		t.Error("second write differs")
	}
}

func TestWritePRePRefuses(t *testing.T) {
	img := prepImage(t)
	before, _ := os.ReadFile(img)
	var tooSmall *PRePTooSmallError
	err := WritePReP(img, 1<<20, 64<<10, fakeCoreELF(65<<10))
	if !errors.As(err, &tooSmall) || tooSmall.Need != 65<<10 || tooSmall.Have != 64<<10 || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("too big: %v", err)
	}
	if err := WritePReP(img, 1<<20, 1<<20, []byte("not an elf at all, not at all, not at all, not at all")); err == nil {
		t.Error("non-ELF accepted")
	}
	if err := WritePReP(img, 0, 1<<20, fakeCoreELF(4096)); err == nil {
		t.Error("offset 0 (not a partition) accepted")
	}
	if err := WritePReP(img, 3<<20, 2<<20, fakeCoreELF(4096)); err == nil || !strings.Contains(err.Error(), "beyond the image") {
		t.Errorf("partition past the end: %v", err)
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Error("a refused write changed the image")
	}
}

func TestBuildIEEE1275MissingTools(t *testing.T) {
	tgt := Target{Root: t.TempDir()}
	root := Layout{{UUID: "3f0e8a7c-1234-4cde-9abc-0123456789ab", Type: "ext4", Table: "msdos", Partition: 2}}
	if _, err := BuildIEEE1275(t.Context(), tgt, root); err == nil || !strings.Contains(err.Error(), "grub-common") {
		t.Errorf("on an empty tree: %v", err)
	}
	os.MkdirAll(filepath.Join(tgt.Root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(tgt.Root, "usr/bin/grub-mkimage"), nil, 0o755)
	if _, err := BuildIEEE1275(t.Context(), tgt, root); err == nil || !strings.Contains(err.Error(), "grub-ieee1275-bin") {
		t.Errorf("without modules: %v", err)
	}
	root[0].Type = "ntfs"
	if _, err := BuildIEEE1275(t.Context(), tgt, root); err == nil {
		t.Error("ntfs root accepted")
	}
}
