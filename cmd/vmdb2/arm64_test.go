package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestForeignBootHostMissing: without the emulator or the firmware of
// the foreign boot tests (TestARM64Boot, TestIEEE1275Boot,
// TestLongArmhfBoot), they fail
// with the package to install whether or not CI is set (they used to
// skip unless CI was set), and skip when boot tests are opted out. The
// missing binfmt_misc handler goes through the same testreq.Need;
// CheckArch's own tests fake it.
func TestForeignBootHostMissing(t *testing.T) {
	cases := []struct {
		name string
		file *string
		fix  string
		fw   qemuboot.Firmware
	}{
		{"qemu-system-ppc64", &qemuboot.QEMUPPC64, "install qemu-system-ppc", qemuboot.SLOF},
		{"qemu-system-aarch64", &qemuboot.QEMUAArch64, "install qemu-system-arm", qemuboot.AAVMF},
		{"AAVMF", &qemuboot.AAVMFCode, "install qemu-efi-aarch64", qemuboot.AAVMF},
		{"qemu-system-arm", &qemuboot.QEMUArm, "install qemu-system-arm", qemuboot.AAVMF32},
		{"AAVMF32", &qemuboot.AAVMF32Code, "install qemu-efi-arm", qemuboot.AAVMF32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := *c.file
			t.Cleanup(func() { *c.file = old })
			*c.file = "/nonexistent/" + c.name
			need := func(t testing.TB) { needFirmware(t, c.fw) }
			for _, ci := range []string{"", "1"} {
				t.Setenv("CI", ci)
				o := testreq.Probe(t, false, "", need)
				if !o.Failed || !strings.Contains(o.Message, c.fix) || !strings.Contains(o.Message, testreq.Env+"=boot") {
					t.Errorf("CI=%q, without %s: %s", ci, c.name, o)
				}
			}
			if o := testreq.Probe(t, false, "boot", need); !o.Skipped {
				t.Errorf("boot opted out: %s", o)
			}
		})
	}
}

// espGUID is GPT's partition type of an EFI system partition.
const espGUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

// TestARM64Boot builds examples/arm64.vmdb as an ordinary user (Debian
// bookworm arm64 through qemu-user: GPT, ESP, ext4 root, GRUB's arm64-efi
// image and shim, which is EFI/BOOT/BOOTAA64.EFI), checks the image's
// table and filesystems, boots it on QEMU's virt machine with AAVMF (TCG,
// -cpu max,pauth-impdef=on: the machine of --boot-check), logs in as root on ttyAMA0 and
// checks that it runs an aarch64 kernel with / the image's root
// filesystem (by UUID), mounted read-write. The rootfs cache is keyed by
// its tree steps and stage/bootstrap (treeCache), so a suite run makes at most
// one emulated build; other tests that need an arm64 system should unpack
// the same cache.
func TestARM64Boot(t *testing.T) {
	checkTools(t, "mmdebstrap", "mke2fs", "debugfs", "e2fsck", "sfdisk", "mdir", "mcopy")
	needForeignHost(t, "arm64", qemuboot.AAVMF)
	needMirror(t)
	parallelForeign(t)
	img := buildExample(t, "arm64")
	root := checkARMUEFIImage(t, img)
	out, err := exec.Command("mdir", "-b", "-i", fmt.Sprintf("%s@@%d", img, espOffset), "::/EFI/BOOT").CombinedOutput()
	if err != nil || !strings.Contains(strings.ToUpper(string(out)), "/EFI/BOOT/BOOTAA64.EFI") {
		t.Errorf("no EFI/BOOT/BOOTAA64.EFI on the ESP: %v\n%s", err, out)
	}
	// grub-efi-arm64's recommends bring shim-signed and the signed GRUB,
	// so the removable-media path is shim, as on amd64.
	if boot := espFile(t, img, "/EFI/BOOT/BOOTAA64.EFI"); len(boot) == 0 || !bytes.Equal(boot, espFile(t, img, "/EFI/debian/shimaa64.efi")) {
		t.Errorf("EFI/BOOT/BOOTAA64.EFI (%d bytes) is not EFI/debian/shimaa64.efi", len(boot))
	}

	bootAndCheck(t, img, qemuboot.AAVMF, root, func(vm *qemuboot.VM) {
		out, err := vm.Run("uname -m; cat /proc/cmdline", time.Minute)
		if err != nil || !strings.HasPrefix(out, "aarch64") || !strings.Contains(out, "console=ttyAMA0") {
			t.Errorf("uname -m / cmdline: %q %v; want aarch64, console=ttyAMA0", out, err)
		}
	})
}

// checkARMUEFIImage checks the layout of examples/arm64.vmdb and
// armhf.vmdb in img: a GPT holding an ESP at espOffset and a root
// partition, the root clean for e2fsck -fn and its grub.cfg giving the
// kernel's console as ttyAMA0. It returns the root partition's offset.
func checkARMUEFIImage(t *testing.T, img string) int64 {
	t.Helper()
	tab := readPartTable(t, img)
	if tab.Label != "gpt" || len(tab.Partitions) != 2 || tab.Partitions[0].Type != espGUID {
		t.Fatalf("want a GPT with an ESP and a root partition, sfdisk says %+v", tab)
	}
	esp, root := partitionOffset(t, img, 1), partitionOffset(t, img, 2)
	if esp != espOffset {
		t.Fatalf("the ESP starts at %d, want %d", esp, espOffset)
	}
	if out, err := exec.Command(sbin("e2fsck"), "-fn", fmt.Sprintf("%s?offset=%d", img, root)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn of the root: %v\n%s", err, out)
	}
	if cfg := debugfs(t, img, root, "cat /boot/grub/grub.cfg"); !strings.Contains(cfg, "console=ttyAMA0") {
		t.Errorf("grub.cfg does not put the kernel's console on ttyAMA0:\n%s", tail(cfg, 40))
	}
	return root
}
