package qemuboot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/ext"
	"github.com/vmdb2-go/vmdb2/fs/fat"
	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/partition/bootcode"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap/basecache"
	"github.com/vmdb2-go/vmdb2/stage/grub"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

func TestMain(m *testing.M) {
	userns.Init()
	os.Exit(m.Run())
}

// epoch is SOURCE_DATE_EPOCH for the test images.
var epoch = time.Unix(1700000000, 0)

// bootTimeout is how long a TCG boot may take to reach the login prompt.
const bootTimeout = 5 * time.Minute

// bootable is the base the boot tests use: a minimal bookworm with a
// kernel, systemd, udev and the GRUB files for BIOS and UEFI (the -bin
// packages only: no grub-pc/grub-efi postinst runs grub-install). It is
// built by basecache, whose debootstrap runs in the build's namespace: no
// mount it makes can outlive it on the host.
var bootable = basecache.Spec{
	Suite:    "bookworm",
	Variant:  "minbase",
	Packages: []string{"linux-image-amd64", "systemd-sysv", "grub-pc-bin", "grub-efi-amd64-bin", "udev", "e2fsprogs"},
}

// tree unpacks the cached bookworm base (built on first use) and
// makes it log-in-able: root without password, a host name.
func tree(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boot tests bootstrap a Debian tree and boot QEMU: skipped with -short")
	}
	testreq.NeedRoot(t, "to debootstrap the tree and unpack it with its owners")
	needBootHost(t, qemuboot.BIOS)
	testreq.Need(t, testreq.Userns, userns.Available())
	ctx := t.Context()
	start := time.Now()
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := basecache.Unpack(ctx, bootable, dir, "", testWriter{t}); err != nil {
		t.Fatal(err)
	}
	shadow := filepath.Join(dir, "etc/shadow")
	b, err := os.ReadFile(shadow)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[0] == "root" {
			lines[i] = "root::" + f[2]
		}
	}
	write(t, shadow, strings.Join(lines, "\n"), 0o640)
	write(t, filepath.Join(dir, "etc/hostname"), "boottest\n", 0o644)
	write(t, filepath.Join(dir, "etc/default/grub"),
		grub.EditDefault("", grub.Defaults{Arch: "amd64", Serial: true, Timeout: 0}), 0o644)
	t.Logf("tree ready in %v", time.Since(start).Round(time.Millisecond))
	return dir
}

// needBootHost fails t, with the fix, when this host cannot boot fw
// (skips it under -short or VMDB2_TEST_SKIP=boot).
func needBootHost(t testing.TB, fw qemuboot.Firmware) {
	t.Helper()
	testreq.Need(t, testreq.Boot, qemuboot.Available(fw))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func write(t *testing.T, path, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

func uuid(b byte) [16]byte {
	var u [16]byte
	for i := range u {
		u[i] = b + byte(i)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// prepareGRUB writes fstab, grub.cfg and the GRUB images for root into the
// tree and checks grub.cfg.
func prepareGRUB(t *testing.T, dir string, root grub.Filesystem) (core, boot []byte) {
	t.Helper()
	ctx := t.Context()
	var log bytes.Buffer
	tgt := grub.Target{Root: dir, Log: &log}
	write(t, filepath.Join(dir, "etc/fstab"), fmt.Sprintf("UUID=%s / ext4 errors=remount-ro 0 1\n", root.UUID), 0o644)
	start := time.Now()
	if err := grub.MkConfig(ctx, tgt, grub.Layout{root}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("grub-mkconfig in %v:\n%s", time.Since(start).Round(time.Millisecond), log.String())
	cfg, err := os.ReadFile(filepath.Join(dir, "boot/grub/grub.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"root=UUID=" + root.UUID + " ", "search --no-floppy --fs-uuid --set=root", "console=ttyS0,115200n8",
		"terminal_output serial", "/boot/vmlinuz-", "/boot/initrd.img-"} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	// Nothing of the stand-in is left behind.
	if b, err := os.ReadFile(filepath.Join(dir, "usr/sbin/grub-probe")); err != nil || bytes.Contains(b, []byte("stand-in")) {
		t.Fatalf("the target's grub-probe was changed (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dev/disk")); err == nil {
		t.Fatal("/dev/disk was left in the tree")
	}
	start = time.Now()
	core, boot, err = grub.BuildBIOS(ctx, tgt, grub.Layout{root})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("core.img: %d bytes (%d sectors) in %v", len(core), bootcode.Sectors(len(core)), time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dir, "boot/grub/i386-pc/linux.mod")); err != nil {
		t.Errorf("modules not copied: %v", err)
	}
	return core, boot
}

func hashFile(t *testing.T, path string) [32]byte {
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
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func buildRoot(t *testing.T, img string, p partition.Partition, dir string, u [16]byte) {
	t.Helper()
	start := time.Now()
	if err := ext.Build(t.Context(), nil, img, p.Offset, p.Size, dir, ext.Options{Type: "ext4", UUID: u, Time: epoch}); err != nil {
		t.Fatal(err)
	}
	t.Logf("ext4 root (%d MiB) built in %v", p.Size>>20, time.Since(start).Round(time.Millisecond))
}

// boot boots img with fw, logs in and checks the root filesystem.
func boot(t *testing.T, img string, fw qemuboot.Firmware, wantUUID string) {
	t.Helper()
	needBootHost(t, fw)
	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout+3*time.Minute)
	defer cancel()
	logPath := filepath.Join(t.TempDir(), "console.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	before := hashFile(t, img)
	vm, err := qemuboot.Boot(ctx, img, fw, logf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := vm.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("console (tail):\n%s", b)
		}
	}()
	if err := vm.WaitFor("Booting `", bootTimeout); err != nil {
		t.Fatal(err)
	}
	grubAt := vm.Elapsed()
	if i, err := vm.Expect(bootTimeout, `login:`, `error: (file|you need|disk|no such|unknown filesystem)[^\r\n]*`, `Kernel panic[^\r\n]*`, `Gave up waiting[^\r\n]*`); err != nil {
		t.Fatal(err)
	} else if i != 0 {
		t.Fatalf("boot failed after %v (see the console below)", vm.Elapsed().Round(100*time.Millisecond))
	}
	t.Logf("%s: GRUB after %v, login prompt after %v", fw, grubAt.Round(100*time.Millisecond), vm.Elapsed().Round(100*time.Millisecond))
	if err := vm.Login("root"); err != nil {
		t.Fatal(err)
	}
	out, err := vm.Run("findmnt -n -o SOURCE,UUID,OPTIONS /", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("findmnt /: %s", out)
	f := strings.Fields(out)
	if len(f) != 3 || f[1] != wantUUID || !strings.HasPrefix(f[2], "rw,") || !strings.HasPrefix(f[0], "/dev/vda") {
		t.Errorf("root filesystem: %q, want /dev/vdaN %s rw,…", out, wantUUID)
	}
	if out, err := vm.Run("touch /x && echo ok", time.Minute); err != nil || out != "ok" {
		t.Errorf("writing to /: %q, %v", out, err)
	}
	if out, err := vm.Run("cat /proc/cmdline", time.Minute); err != nil || !strings.Contains(out, "root=UUID="+wantUUID) {
		t.Errorf("kernel command line %q, %v", out, err)
	}
	if fw == qemuboot.UEFI {
		if out, err := vm.Run("test -d /sys/firmware/efi && echo efi", time.Minute); err != nil || out != "efi" {
			t.Errorf("not booted through UEFI: %q, %v", out, err)
		}
	}
	if _, err := vm.Run("false", time.Minute); err == nil {
		t.Error("Run(false) succeeded")
	}
	t.Logf("%s: boot, login and checks took %v", fw, vm.Elapsed().Round(100*time.Millisecond))
	if err := vm.Close(); err != nil {
		t.Fatal(err)
	}
	if hashFile(t, img) != before {
		t.Error("booting modified the image (snapshot mode should prevent that)")
	}
}

// TestBootMSDOS: msdos label, ext4 root, GRUB's core.img in the MBR gap,
// SeaBIOS.
func TestBootMSDOS(t *testing.T) {
	dir := tree(t)
	img := filepath.Join(t.TempDir(), "msdos.img")
	if err := partition.CreateImage(img, 2<<30); err != nil {
		t.Fatal(err)
	}
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.MakeLabel("msdos", partition.LabelIDs{MBRSignature: 0x12345678}); err != nil {
		t.Fatal(err)
	}
	p, err := d.MakePart("primary", "ext4", "1MiB", "100%")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetFlag(1, "boot", true); err != nil {
		t.Fatal(err)
	}
	d.Close()
	u := uuid(0x10)
	root := grub.Filesystem{UUID: ext.FormatUUID(u), Type: "ext4", Table: "msdos", Partition: 1, PartUUID: "12345678-01"}
	core, bootImg := prepareGRUB(t, dir, root)
	buildRoot(t, img, p, dir, u)
	if err := bootcode.InstallBIOS(img, bootImg, core); err != nil {
		t.Fatal(err)
	}
	boot(t, img, qemuboot.BIOS, root.UUID)
}

// TestBootGPT: gpt label with a BIOS boot partition, an ESP and an ext4
// root; the same image boots under SeaBIOS and OVMF.
func TestBootGPT(t *testing.T) {
	dir := tree(t)
	img := filepath.Join(t.TempDir(), "gpt.img")
	if err := partition.CreateImage(img, 2<<30); err != nil {
		t.Fatal(err)
	}
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	diskGUID, _ := partition.ParseGUID("6d0c1a6e-7f2b-4c55-9a51-3c1f0d2e4b77")
	if err := d.MakeLabel("gpt", partition.LabelIDs{DiskGUID: diskGUID}); err != nil {
		t.Fatal(err)
	}
	mk := func(name, fs, start, end, flag string) partition.Partition {
		p, err := d.MakePart(name, fs, start, end)
		if err != nil {
			t.Fatal(err)
		}
		if flag != "" {
			if err := d.SetFlag(p.Number, flag, true); err != nil {
				t.Fatal(err)
			}
		}
		p, _ = d.Partition(p.Number)
		return p
	}
	mk("bios", "", "1MiB", "2MiB", "bios_grub")
	esp := mk("esp", "fat32", "2MiB", "66MiB", "esp")
	rootPart := mk("root", "ext4", "66MiB", "100%", "")
	d.Close()

	u := uuid(0x40)
	root := grub.Filesystem{UUID: ext.FormatUUID(u), Type: "ext4", Table: "gpt", Partition: 3,
		PartUUID: strings.ToLower(rootPart.GUID.String())}
	core, bootImg := prepareGRUB(t, dir, root)
	efi, err := grub.BuildEFI(t.Context(), grub.Target{Root: dir}, grub.Layout{root}, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BOOTX64.EFI: %d bytes", len(efi))
	espDir := t.TempDir()
	if err := grub.InstallEFI(espDir, efi, "amd64"); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fat.Build(f, esp.Offset, esp.Size, espDir, fat.Options{Label: "EFI", VolumeID: 0x1234abcd, Time: epoch}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	buildRoot(t, img, rootPart, dir, u)
	if err := bootcode.InstallBIOS(img, bootImg, core); err != nil {
		t.Fatal(err)
	}
	t.Run("SeaBIOS", func(t *testing.T) { boot(t, img, qemuboot.BIOS, root.UUID) })
	t.Run("OVMF", func(t *testing.T) { boot(t, img, qemuboot.UEFI, root.UUID) })
}

// TestBootHostMissing: without QEMU or OVMF the boot tests fail with the
// fix instead of skipping; only -short and VMDB2_TEST_SKIP=boot skip them.
func TestBootHostMissing(t *testing.T) {
	oldQEMU, oldCode := qemuboot.QEMU, qemuboot.OVMFCode
	t.Cleanup(func() { qemuboot.QEMU, qemuboot.OVMFCode = oldQEMU, oldCode })
	check := func(fw qemuboot.Firmware) func(testing.TB) {
		return func(t testing.TB) { needBootHost(t, fw) }
	}
	qemuboot.QEMU = filepath.Join(t.TempDir(), "qemu-system-x86_64")
	for _, c := range []struct {
		short bool
		skip  string
		want  string
	}{{false, "", "failed"}, {false, "foreign", "failed"}, {true, "", "skipped"}, {false, "boot", "skipped"}} {
		o := testreq.Probe(t, c.short, c.skip, check(qemuboot.BIOS))
		if !strings.HasPrefix(o.String(), c.want) {
			t.Errorf("without QEMU, -short=%v %s=%q: %s, want %s", c.short, testreq.Env, c.skip, o, c.want)
		}
		if o.Failed && (!strings.Contains(o.Message, "install qemu-system-x86") || !strings.Contains(o.Message, "make deps") ||
			!strings.Contains(o.Message, testreq.Env+"=boot")) {
			t.Errorf("the failure does not say what to do: %s", o.Message)
		}
	}
	fake := filepath.Join(t.TempDir(), "qemu")
	write(t, fake, "#!/bin/sh\n", 0o755)
	qemuboot.QEMU = fake
	qemuboot.OVMFCode = filepath.Join(t.TempDir(), "OVMF_CODE_4M.fd")
	if o := testreq.Probe(t, false, "", check(qemuboot.UEFI)); !o.Failed || !strings.Contains(o.Message, "install ovmf") {
		t.Errorf("without OVMF, UEFI: %s", o)
	}
	if o := testreq.Probe(t, false, "", check(qemuboot.BIOS)); o.Failed || o.Skipped {
		t.Errorf("without OVMF, BIOS: %s", o)
	}
}
