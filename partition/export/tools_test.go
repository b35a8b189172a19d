package export

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// The exports checked with the programs people read them with.

func TestQemuImgExportsCompareEqual(t *testing.T) {
	testreq.NeedTools(t, "qemu-img")
	image, _ := makeImage(t)
	dir := t.TempDir()
	for _, suffix := range []string{".qcow2", ".vmdk", ".vhdx"} {
		t.Run(suffix, func(t *testing.T) {
			first := export(t, image, dir, "a"+suffix)
			target := filepath.Join(dir, "a"+suffix)
			out, err := exec.Command("qemu-img", "compare", "-q", "-f", "raw", "-F", suffix[1:], image, target).CombinedOutput()
			if err != nil {
				t.Fatalf("qemu-img compare: %v %s", err, out)
			}
			if out, err := exec.Command("qemu-img", "check", "-q", "-f", suffix[1:], target).CombinedOutput(); err != nil {
				t.Errorf("qemu-img check: %v %s", err, out)
			}
			info, err := exec.Command("qemu-img", "info", "--output=json", target).Output()
			if err != nil || !strings.Contains(string(info), `"format": "`+suffix[1:]+`"`) {
				t.Errorf("qemu-img info: %v %s", err, info)
			}
			if used := diskUsage(t, target); used > testImageSize/2 {
				t.Errorf("%d bytes on disk for a mostly empty %d-byte image: not sparse", used, testImageSize)
			}
			second := export(t, image, dir, "a"+suffix) // the same name: vmdk records it
			if !bytes.Equal(first, second) {
				t.Errorf("two exports of one image differ")
			}
		})
	}
}

// diskUsage is the space a file takes on disk (its holes take none).
func diskUsage(t *testing.T, path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestBmaptoolCopyReproducesTheImage(t *testing.T) {
	testreq.NeedTools(t, "bmaptool")
	image, want := makeImage(t)
	dir := t.TempDir()
	export(t, image, dir, "disk.bmap")
	copied := filepath.Join(dir, "copy.img")
	out, err := exec.Command("bmaptool", "copy", "--bmap", filepath.Join(dir, "disk.bmap"), image, copied).CombinedOutput()
	if err != nil {
		t.Fatalf("bmaptool copy: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(copied); !bytes.Equal(got, want) {
		t.Errorf("bmaptool copy gave %d bytes that differ from the image", len(got))
	}
	// bmaptool verified every range's checksum: a changed byte in a
	// mapped block makes it fail.
	f, _ := os.OpenFile(image, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, 10)
	f.Close()
	if out, err := exec.Command("bmaptool", "copy", "--bmap", filepath.Join(dir, "disk.bmap"), image, copied).CombinedOutput(); err == nil {
		t.Errorf("bmaptool copy accepted an image whose data changed:\n%s", out)
	}
}

func TestCompressedExportsDecompressWithTheirTools(t *testing.T) {
	testreq.NeedTools(t, "zstd", "xz", "gzip")
	image, want := makeImage(t)
	dir := t.TempDir()
	for suffix, tool := range map[string]string{".img.zst": "zstd", ".img.xz": "xz", ".img.gz": "gzip"} {
		export(t, image, dir, "a"+suffix)
		got, err := exec.Command(tool, "-dc", filepath.Join(dir, "a"+suffix)).Output()
		if err != nil {
			t.Errorf("%s -dc: %v", tool, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s -dc gave %d bytes that differ from the image", tool, len(got))
		}
		if out, err := exec.Command(tool, "-t", filepath.Join(dir, "a"+suffix)).CombinedOutput(); err != nil {
			t.Errorf("%s -t: %v %s", tool, err, out)
		}
	}
}
