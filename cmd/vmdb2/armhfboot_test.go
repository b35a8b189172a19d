package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestLongArmhfBoot builds examples/armhf.vmdb as an ordinary user (Debian
// bookworm armhf through qemu-debootstrap and qemu-user: GPT, ESP, ext4
// root, GRUB's arm-efi image as EFI/BOOT/BOOTARM.EFI, the LPAE kernel),
// checks the image's table and filesystems, boots it on qemu-system-arm's
// virt machine with AAVMF32 (TCG, -cpu max: the machine of --boot-check),
// logs in as root on ttyAMA0 and checks that it runs a 32-bit ARM kernel
// with / the image's root filesystem (by UUID), mounted read-write. Like
// TestARM64Boot, it makes at most one emulated build per suite run (the
// rootfs cache is keyed by its tree steps and stage/bootstrap). It is beyond
// make check's budget (make check-long runs it); TestArmhfBootstrap
// builds armhf trees with both engines in make check.
func TestLongArmhfBoot(t *testing.T) {
	testreq.Long(t, "the armhf example's cold build takes about 9 minutes through qemu-user on 2 cores, and its boot under AAVMF32 one more")
	checkTools(t, "debootstrap", "mke2fs", "debugfs", "e2fsck", "sfdisk", "mdir", "mcopy", "unshare")
	needForeignHost(t, "armhf", qemuboot.AAVMF32)
	needMirror(t)
	parallelForeign(t)
	img := buildExample(t, "armhf")

	root := checkARMUEFIImage(t, img)
	// The tree qemu-debootstrap made as the user, run under qemu-user.
	checkArmhfTree(t, rootTree(t, img, root))
	if boot := espFile(t, img, "/EFI/BOOT/BOOTARM.EFI"); len(boot) < 2 || string(boot[:2]) != "MZ" {
		t.Errorf("EFI/BOOT/BOOTARM.EFI on the ESP is no PE image (%d bytes)", len(boot))
	}

	bootAndCheck(t, img, qemuboot.AAVMF32, root, func(vm *qemuboot.VM) {
		out, err := vm.Run("uname -m; cat /proc/cmdline", time.Minute)
		if err != nil || !strings.HasPrefix(out, "armv7l") || !strings.Contains(out, "console=ttyAMA0") {
			t.Errorf("uname -m / cmdline: %q %v; want armv7l, console=ttyAMA0", out, err)
		}
	})
}
