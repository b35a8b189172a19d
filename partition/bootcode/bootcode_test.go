package bootcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/partition"
)

// fakeBoot is a boot.img look-alike: recognisable bytes, GRUB's defaults
// at the patched offsets and the 55AA signature.
func fakeBoot() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	binary.LittleEndian.PutUint64(b[kernelSectorOff:], 1)
	b[bootDriveOff] = 0xFF
	b[driveCheckOff], b[driveCheckOff+1] = 0xEB, 0x05
	b[510], b[511] = 0x55, 0xAA
	return b
}

// fakeCore is a core.img look-alike of n bytes whose first sector ends in
// diskboot's block list.
func fakeCore(n int) []byte {
	c := make([]byte, n)
	for i := range c {
		c[i] = byte(i*13 + 5)
	}
	for i := blocklistOff - 12; i < 512; i++ {
		c[i] = 0
	}
	binary.LittleEndian.PutUint64(c[blocklistOff:], 2)
	binary.LittleEndian.PutUint16(c[blocklistOff+8:], uint16(Sectors(n)-1))
	binary.LittleEndian.PutUint16(c[blocklistOff+10:], blocklistSegment)
	return c
}

func makeDisk(t *testing.T, label string, parts ...[3]string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := partition.CreateImage(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	g, _ := partition.ParseGUID("01234567-89ab-cdef-0123-456789abcdef")
	if err := d.MakeLabel(label, partition.LabelIDs{DiskGUID: g, MBRSignature: 0xdeadbeef}); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		pt := "primary"
		if label == "gpt" {
			pt = "p"
		}
		np, err := d.MakePart(pt, "", p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		if p[2] != "" {
			if err := d.SetFlag(np.Number, p[2], true); err != nil {
				t.Fatal(err)
			}
		}
	}
	return img
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkInstalled verifies the patched fields and that nothing outside
// MBR[0:440] and core.img's sectors changed.
func checkInstalled(t *testing.T, before, after, boot, core []byte, coreLBA int64) {
	t.Helper()
	nsec := Sectors(len(core))
	coreStart, coreEnd := coreLBA*512, (coreLBA+nsec)*512
	for i := range after {
		if (i < mbrCodeEnd) || (int64(i) >= coreStart && int64(i) < coreEnd) {
			continue
		}
		if before[i] != after[i] {
			t.Fatalf("byte %d (sector %d) changed from %#x to %#x", i, i/512, before[i], after[i])
		}
	}
	if got := binary.LittleEndian.Uint64(after[kernelSectorOff:]); got != uint64(coreLBA) {
		t.Errorf("kernel sector = %d, want %d", got, coreLBA)
	}
	if after[bootDriveOff] != 0xFF || after[driveCheckOff] != 0x90 || after[driveCheckOff+1] != 0x90 {
		t.Errorf("boot drive / drive check = % x / % x", after[bootDriveOff], after[driveCheckOff:driveCheckOff+2])
	}
	if !bytes.Equal(after[:bpbStart], boot[:bpbStart]) || !bytes.Equal(after[bpbEnd:kernelSectorOff], boot[bpbEnd:kernelSectorOff]) ||
		!bytes.Equal(after[driveCheckOff+2:mbrCodeEnd], boot[driveCheckOff+2:mbrCodeEnd]) {
		t.Error("boot.img code was not copied into the MBR")
	}
	if !bytes.Equal(after[bpbStart:bpbEnd], before[bpbStart:bpbEnd]) {
		t.Error("the BPB area of the disk was not kept")
	}
	c := after[coreStart:coreEnd]
	if got := binary.LittleEndian.Uint64(c[blocklistOff:]); got != uint64(coreLBA+1) {
		t.Errorf("block list start = %d, want %d", got, coreLBA+1)
	}
	if got := binary.LittleEndian.Uint16(c[blocklistOff+8:]); int64(got) != nsec-1 {
		t.Errorf("block list length = %d, want %d", got, nsec-1)
	}
	if !bytes.Equal(c[:blocklistOff], core[:blocklistOff]) || !bytes.Equal(c[512:len(core)], core[512:]) {
		t.Error("core.img was not copied intact")
	}
	for _, b := range c[len(core):] {
		if b != 0 {
			t.Fatal("core.img's last sector is not zero-padded")
		}
	}
}

func TestInstallMSDOS(t *testing.T) {
	img := makeDisk(t, "msdos", [3]string{"1MiB", "100%", "boot"})
	before := readAll(t, img)
	boot, core := fakeBoot(), fakeCore(300*512+17)
	if err := InstallBIOS(img, boot, core); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, img)
	checkInstalled(t, before, after, boot, core, 1)
	if !bytes.Equal(before[440:512], after[440:512]) {
		t.Fatal("MBR bytes 440..511 changed")
	}
	// The table still reads back the same.
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.MBRSignature() != 0xdeadbeef || len(d.Partitions()) != 1 || d.Partitions()[0].StartSector != 2048 {
		t.Fatalf("table changed: sig %#x parts %+v", d.MBRSignature(), d.Partitions())
	}
	sfdisk(t, img)
}

func TestInstallGPT(t *testing.T) {
	img := makeDisk(t, "gpt",
		[3]string{"1MiB", "2MiB", "bios_grub"},
		[3]string{"2MiB", "10MiB", "esp"},
		[3]string{"10MiB", "100%", ""})
	before := readAll(t, img)
	boot, core := fakeBoot(), fakeCore(2048*512) // exactly fills 1 MiB
	if err := InstallBIOS(img, boot, core); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, img)
	checkInstalled(t, before, after, boot, core, 2048)
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Label() != "gpt" || len(d.Partitions()) != 3 {
		t.Fatalf("table changed: %s %+v", d.Label(), d.Partitions())
	}
	sfdisk(t, img)
}

func TestInstallTwiceIsIdempotent(t *testing.T) {
	img := makeDisk(t, "msdos", [3]string{"1MiB", "100%", ""})
	boot, core := fakeBoot(), fakeCore(5000)
	if err := InstallBIOS(img, boot, core); err != nil {
		t.Fatal(err)
	}
	once := readAll(t, img)
	if err := InstallBIOS(img, boot, core); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(once, readAll(t, img)) {
		t.Fatal("a second install changed the image")
	}
}

func TestCoreTooBigForGap(t *testing.T) {
	img := makeDisk(t, "msdos", [3]string{"4s", "100%", ""})
	before := readAll(t, img)
	err := InstallBIOS(img, fakeBoot(), fakeCore(4*512))
	var tb *TooBigError
	if !errors.As(err, &tb) {
		t.Fatalf("want *TooBigError, got %v", err)
	}
	if tb.Need != 4 || tb.Have != 3 || !strings.Contains(err.Error(), "MBR gap (sectors 1-3") {
		t.Fatalf("unexpected error: %v (%+v)", err, tb)
	}
	t.Log(err)
	if !bytes.Equal(before, readAll(t, img)) {
		t.Fatal("a failed install wrote to the image")
	}
	// Three sectors do fit.
	if err := InstallBIOS(img, fakeBoot(), fakeCore(3*512)); err != nil {
		t.Fatal(err)
	}
}

func TestCoreTooBigForBIOSBootPartition(t *testing.T) {
	img := makeDisk(t, "gpt", [3]string{"2048s", "2063s", "bios_grub"}, [3]string{"2MiB", "100%", ""})
	err := InstallBIOS(img, fakeBoot(), fakeCore(20*512))
	var tb *TooBigError
	if !errors.As(err, &tb) || !strings.Contains(err.Error(), "BIOS boot partition 1") {
		t.Fatalf("want *TooBigError for the BIOS boot partition, got %v", err)
	}
	t.Log(err)
}

func TestGPTWithoutBIOSBootPartition(t *testing.T) {
	img := makeDisk(t, "gpt", [3]string{"1MiB", "10MiB", "esp"}, [3]string{"10MiB", "100%", ""})
	before := readAll(t, img)
	err := InstallBIOS(img, fakeBoot(), fakeCore(4096))
	if !errors.Is(err, ErrNoBIOSBootPartition) {
		t.Fatalf("want ErrNoBIOSBootPartition, got %v", err)
	}
	t.Log(err)
	if !bytes.Equal(before, readAll(t, img)) {
		t.Fatal("a failed install wrote to the image")
	}
}

func TestNoTableOrNoPartitions(t *testing.T) {
	img := filepath.Join(t.TempDir(), "bare.img")
	if err := partition.CreateImage(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := InstallBIOS(img, fakeBoot(), fakeCore(4096)); err == nil || !strings.Contains(err.Error(), "no partition table") {
		t.Fatalf("bare image: %v", err)
	}
	img = makeDisk(t, "msdos")
	if err := InstallBIOS(img, fakeBoot(), fakeCore(4096)); err == nil || !strings.Contains(err.Error(), "without partitions") {
		t.Fatalf("empty msdos label: %v", err)
	}
	if err := InstallBIOS(filepath.Join(t.TempDir(), "missing.img"), fakeBoot(), fakeCore(4096)); err == nil {
		t.Fatal("missing image accepted")
	}
}

func TestPatchRejectsBadImages(t *testing.T) {
	mbr := make([]byte, 512)
	if _, _, err := Patch(make([]byte, 511), fakeCore(4096), mbr, 1); err == nil {
		t.Error("short boot.img accepted")
	}
	if _, _, err := Patch(make([]byte, 512), fakeCore(4096), mbr, 1); err == nil {
		t.Error("boot.img without 55AA accepted")
	}
	if _, _, err := Patch(fakeBoot(), make([]byte, 4096), mbr, 1); err == nil || !strings.Contains(err.Error(), "diskboot") {
		t.Errorf("core.img without diskboot accepted: %v", err)
	}
	if _, _, err := Patch(fakeBoot(), make([]byte, 100), mbr, 1); err == nil {
		t.Error("tiny core.img accepted")
	}
	if _, _, err := Patch(fakeBoot(), fakeCore(4096), mbr, 0); err == nil {
		t.Error("core.img at sector 0 accepted")
	}
}

// grubPCDir holds the host's GRUB for BIOS (package grub-pc-bin).
var grubPCDir = "/usr/lib/grub/i386-pc"

// hostBootImg returns the host's boot.img; t fails with the fix when
// grub-pc-bin or grub-mkimage is missing (skips under -short).
func hostBootImg(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(grubPCDir, "boot.img"))
	if err != nil {
		err = fmt.Errorf("GRUB's BIOS images are missing (install grub-pc-bin): %w", err)
	}
	testreq.Need(t, testreq.Tools, err)
	testreq.NeedTools(t, "grub-mkimage")
	return b
}

// TestRealGRUBImages patches the host's GRUB images (grub-pc-bin) and
// checks the fields against GRUB's own defaults.
func TestRealGRUBImages(t *testing.T) {
	bootImg := hostBootImg(t)
	coreFile := filepath.Join(t.TempDir(), "core.img")
	out, err := exec.Command("grub-mkimage", "-O", "i386-pc", "-o", coreFile, "-p", "(hd0,msdos1)/boot/grub",
		"biosdisk", "part_msdos", "ext2").CombinedOutput()
	if err != nil {
		t.Fatalf("grub-mkimage: %v: %s", err, out)
	}
	coreImg := readAll(t, coreFile)
	if got := binary.LittleEndian.Uint64(bootImg[kernelSectorOff:]); got != 1 {
		t.Errorf("GRUB's boot.img kernel sector default = %d, want 1", got)
	}
	if bootImg[driveCheckOff] != 0xEB {
		t.Errorf("GRUB's boot.img has % x at the drive check, want a short jmp", bootImg[driveCheckOff:driveCheckOff+2])
	}
	if got := binary.LittleEndian.Uint16(coreImg[blocklistOff+8:]); int64(got) != Sectors(len(coreImg))-1 {
		t.Errorf("grub-mkimage's block list length %d, Sectors-1 = %d", got, Sectors(len(coreImg))-1)
	}
	img := makeDisk(t, "msdos", [3]string{"1MiB", "100%", ""})
	before := readAll(t, img)
	if err := InstallBIOS(img, bootImg, coreImg); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, img)
	checkInstalled(t, before, after, bootImg, coreImg, 1)
	// At LBA 1 the block list is grub-mkimage's own default: the
	// sectors written are core.img as built, byte for byte.
	n := int(Sectors(len(coreImg))) * 512
	padded := make([]byte, n)
	copy(padded, coreImg)
	if !bytes.Equal(after[512:512+n], padded) {
		t.Error("at LBA 1, core.img should be written unchanged")
	}

	// The real core.img in a gap of a few sectors, and on gpt without a
	// BIOS boot partition.
	small := makeDisk(t, "msdos", [3]string{"8s", "100%", ""})
	var tb *TooBigError
	if err := InstallBIOS(small, bootImg, coreImg); !errors.As(err, &tb) || tb.Have != 7 {
		t.Errorf("real core.img in a 7-sector gap: %v", err)
	}
	nobb := makeDisk(t, "gpt", [3]string{"1MiB", "100%", ""})
	if err := InstallBIOS(nobb, bootImg, coreImg); !errors.Is(err, ErrNoBIOSBootPartition) {
		t.Errorf("real core.img on gpt without BIOS boot partition: %v", err)
	}
}

func sfdisk(t *testing.T, img string) {
	t.Helper()
	testreq.NeedTools(t, "sfdisk")
	out, err := exec.Command("sfdisk", "-J", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -J after install: %v: %s", err, out)
	}
}

// TestRealGRUBImagesMissing: without grub-pc-bin or grub-mkimage,
// TestRealGRUBImages fails with the fix (skips only under -short or
// VMDB2_TEST_SKIP=tools).
func TestRealGRUBImagesMissing(t *testing.T) {
	old := grubPCDir
	t.Cleanup(func() { grubPCDir = old })
	grubPCDir = t.TempDir()
	o := testreq.Probe(t, false, "", func(t testing.TB) { hostBootImg(t) })
	if !o.Failed || !strings.Contains(o.Message, "install grub-pc-bin") || !strings.Contains(o.Message, "make deps") {
		t.Errorf("without boot.img: %s", o)
	}
	if o := testreq.Probe(t, true, "", func(t testing.TB) { hostBootImg(t) }); !o.Skipped {
		t.Errorf("without boot.img, -short: %s", o)
	}
	if o := testreq.Probe(t, false, "tools", func(t testing.TB) { hostBootImg(t) }); !o.Skipped {
		t.Errorf("without boot.img, tools opted out: %s", o)
	}
	if err := os.WriteFile(filepath.Join(grubPCDir, "boot.img"), make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	if o := testreq.Probe(t, false, "", func(t testing.TB) { hostBootImg(t) }); !o.Failed || !strings.Contains(o.Message, "grub-mkimage not found") {
		t.Errorf("without grub-mkimage: %s", o)
	}
}
