package partition

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseImageSize checks that ParseImageSize never panics, that accepted
// sizes are positive whole sectors, and that errors say what was wrong.
func FuzzParseImageSize(f *testing.F) {
	for _, s := range []string{"4G", "1.5G", "2000M", "100k", "1024", "0x1000", "4GiB", "1MB", "", "-1", "0", "8E", "1e3", " 1G", "1.k", "9999999999999999999999E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseImageSize(s)
		if err != nil {
			if n != 0 || !strings.Contains(err.Error(), "invalid image size") {
				t.Fatalf("ParseImageSize(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n <= 0 || n%512 != 0 {
			t.Fatalf("ParseImageSize(%q) = %d: not a positive multiple of 512", s, n)
		}
	})
}

// FuzzParsePosition checks that parted locations never panic and that an
// accepted location lies on the device with its fuzz around it.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0%", "100%", "1MiB", "-1s", "2048s", "1G", "10", "-0", "1.5.5GB", "--1", "1e400", "-9e18MB"} {
		f.Add(s, int64(8388608))
	}
	f.Fuzz(func(t *testing.T, s string, length int64) {
		if length < 2 || length > 1<<40 {
			return
		}
		p, err := parsePosition(s, 512, length)
		if err != nil {
			return
		}
		if p.sector < 0 || p.sector >= length || !p.fuzz.contains(p.sector) || p.fuzz.start < 0 || p.fuzz.end >= length {
			t.Fatalf("parsePosition(%q, %d) = %+v", s, length, p)
		}
	})
}

// fuzzImageSectors is the size of the images FuzzOpen reads: 128 KiB.
const fuzzImageSectors = 256

// FuzzOpen reads a partition table from a fuzzed image (an `--image` is
// untrusted input): head is written at its start, tail at its end (where
// the backup GPT header is); with fixCRC the GPT checksums are made right
// first, so that the fuzzer gets past them. Open must return a table or an
// error, never panic or allocate beyond the image; a table it returns must
// lie on the disk, and adding a partition and setting a flag on it must
// not panic either.
func FuzzOpen(f *testing.F) {
	msdos := labelledImage(f, "msdos")
	f.Add(msdos[:512], []byte{}, false)
	// The GPT seeds have 4 entries instead of 128, so that they are short
	// (the fuzzer minimises every new input it keeps).
	gpt := labelledImage(f, "gpt")
	for _, h := range [][]byte{gpt[512:1024], gpt[len(gpt)-512:]} {
		binary.LittleEndian.PutUint32(h[80:], 4)
	}
	f.Add(gpt[:3*512], gpt[len(gpt)-512:], true)
	f.Add(gpt[:2*512], gpt[len(gpt)-512:], true) // primary entries lost: the backup header is used
	f.Add([]byte{}, []byte{}, false)
	path := filepath.Join(f.TempDir(), "fuzz.img")
	f.Fuzz(func(t *testing.T, head, tail []byte, fixCRC bool) {
		img := make([]byte, fuzzImageSectors*512)
		copy(img, head)
		if len(tail) <= 512 {
			copy(img[len(img)-len(tail):], tail)
		}
		if fixCRC {
			fixGPTChecksums(img[512:1024], img)
			fixGPTChecksums(img[len(img)-512:], img)
		}
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Open(path)
		if err != nil {
			return
		}
		defer d.Close()
		for _, p := range d.Partitions() {
			if p.StartSector < 0 || p.SizeSectors < 1 || p.EndSector() >= d.SizeSectors() {
				t.Fatalf("%s partition %d (sectors %d..%d) is not on the disk (%d sectors)", d.Label(), p.Number, p.StartSector, p.EndSector(), d.SizeSectors())
			}
		}
		if p, err := d.MakePart("primary", "ext4", "0%", "100%"); err == nil {
			_ = d.SetFlag(p.Number, "boot", true)
		}
		if _, err := Open(path); err != nil && d.Label() != "" {
			t.Fatalf("the table written over a %s table does not read back: %v", d.Label(), err)
		}
	})
}

// labelledImage is an image of FuzzOpen's size with a label of the kind and
// two partitions.
func labelledImage(f testing.TB, label string) []byte {
	path := filepath.Join(f.TempDir(), label+".img")
	if err := CreateImage(path, fuzzImageSectors*512); err != nil {
		f.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		f.Fatal(err)
	}
	if err := d.MakeLabel(label, testIDs); err != nil {
		f.Fatal(err)
	}
	for _, r := range [][2]string{{"34s", "100s"}, {"101s", "-35s"}} {
		if _, err := d.MakePart("primary", "ext4", r[0], r[1]); err != nil {
			f.Fatal(err)
		}
	}
	d.Close()
	img, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return img
}

// fixGPTChecksums makes the checksums of the GPT header in h (a sector of
// img) right when it looks like one: the entry array's (if it is in img)
// and then the header's.
func fixGPTChecksums(h, img []byte) {
	if string(h[:8]) != "EFI PART" {
		return
	}
	size := binary.LittleEndian.Uint32(h[12:])
	if size < 92 || size > 512 {
		return
	}
	lba := binary.LittleEndian.Uint64(h[72:])
	n := uint64(binary.LittleEndian.Uint32(h[80:])) * uint64(binary.LittleEndian.Uint32(h[84:]))
	if lba < uint64(len(img))/512 && n <= uint64(len(img))-lba*512 {
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(img[lba*512:lba*512+n]))
	}
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:size]))
}
