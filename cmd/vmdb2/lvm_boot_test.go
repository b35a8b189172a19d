package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestPlainLVMBootsUEFI builds testdata/lvm/uefi.vmdb (ESP, /boot
// partition, root on an LV of a VG written without device-mapper) as an
// ordinary user, boots it in OVMF, and checks in the guest that / is
// /dev/mapper/vg0-root on an lvm device, that lvs reads the VG and that
// update-grub works.
func TestPlainLVMBootsUEFI(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs")
	needMirror(t)
	parallelBuild(t)
	testreq.Need(t, testreq.Boot, qemuboot.Available(qemuboot.UEFI))
	spec, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "lvm", "uefi.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	tarball := specTreeCache(t, "lvm-uefi", spec) // shared with TestLUKSBoot
	img := buildSpec(t, "lvm-uefi", string(spec), tarball)
	// The root LV is the VG's first: extent 0 of the PV at 385 MiB, whose
	// extents start 1 MiB in.
	const rootOffset = (385 + 1) << 20
	bootAndCheck(t, img, qemuboot.UEFI, rootOffset, func(vm *qemuboot.VM) {
		out, err := vm.Run("findmnt -n -o SOURCE /; lsblk -n -o NAME,TYPE -s $(findmnt -n -o SOURCE /) | tr -s ' ' | tr '\\n' ' '", time.Minute)
		if err != nil || !strings.HasPrefix(out, "/dev/mapper/vg0-root") || !strings.Contains(out, "lvm") {
			t.Errorf("/ in the guest: %q (%v); want /dev/mapper/vg0-root, an lvm device", out, err)
		}
		out, err = vm.Run("lvs --noheadings -o lv_name,vg_name,lv_size --units m vg0 2>&1", time.Minute)
		if err != nil || !strings.Contains(out, "root") || !strings.Contains(out, "spare") || !strings.Contains(out, "2048.00m") {
			t.Errorf("lvs in the guest: %q (%v)", out, err)
		}
		out, err = vm.Run("update-grub >/tmp/ug.log 2>&1; echo rc=$?; grep -c 'root=/dev/mapper/vg0-root' /boot/grub/grub.cfg", 3*time.Minute)
		if err != nil || !strings.Contains(out, "rc=0") || strings.Contains(out, "\n0") {
			log, _ := vm.Run("tail -n 20 /tmp/ug.log", time.Minute)
			t.Errorf("update-grub in the guest: %q (%v)\n%s", out, err, log)
		}
	})
}
