package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// espOffset and sbRootOffset are where examples/secureboot.vmdb (and
// uefi.vmdb) put the ESP and the root filesystem.
const (
	espOffset    = 1 << 20
	sbRootOffset = 129 << 20
)

// espFile reads a file of the FAT filesystem at espOffset of img with
// mtools.
func espFile(t *testing.T, img, path string) []byte {
	t.Helper()
	out, err := exec.Command("mcopy", "-n", "-i", fmt.Sprintf("%s@@%d", img, espOffset), "::"+path, "-").Output()
	if err != nil {
		t.Errorf("mcopy %s from the ESP: %v", path, err)
	}
	return out
}

// TestSecureBoot builds examples/secureboot.vmdb (shim-signed and
// grub-efi-amd64-signed in the target) as an ordinary user, checks that
// the ESP holds Debian's signed binaries where grub-install puts them, and
// boots it with OVMF enforcing Secure Boot with Microsoft's keys: it must
// reach the login prompt, and the booted system must report Secure Boot
// on. Then copies of the image with an unsigned or a tampered shim must be
// refused by the same firmware.
func TestSecureBoot(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs", "mcopy")
	needMirror(t)
	parallelBuild(t)
	testreq.Need(t, testreq.Boot, qemuboot.Available(qemuboot.SecureBoot))
	img := buildExample(t, "secureboot")

	t.Run("ESP", func(t *testing.T) {
		target := func(p string) []byte { return []byte(debugfs(t, img, sbRootOffset, "cat "+p)) }
		shim := target("/usr/lib/shim/shimx64.efi.signed")
		grub := target("/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")
		mm := target("/usr/lib/shim/mmx64.efi.signed")
		if len(shim) < 1024 || len(grub) < 1024 || len(mm) < 1024 {
			t.Fatalf("signed binaries missing in the target: shim %d, grub %d, mm %d bytes", len(shim), len(grub), len(mm))
		}
		for path, want := range map[string][]byte{
			"/EFI/BOOT/BOOTX64.EFI":   shim,
			"/EFI/BOOT/grubx64.efi":   grub,
			"/EFI/BOOT/mmx64.efi":     mm,
			"/EFI/debian/shimx64.efi": shim,
			"/EFI/debian/grubx64.efi": grub,
			"/EFI/debian/mmx64.efi":   mm,
			"/EFI/debian/fbx64.efi":   target("/usr/lib/shim/fbx64.efi.signed"),
			"/EFI/debian/BOOTX64.CSV": target("/usr/lib/shim/BOOTX64.CSV"),
		} {
			if got := espFile(t, img, path); !bytes.Equal(got, want) {
				t.Errorf("ESP %s: %d bytes, not the target's signed file (%d bytes)", path, len(got), len(want))
			}
		}
		cfg := string(espFile(t, img, "/EFI/debian/grub.cfg"))
		m := rootUUIDRE.FindStringSubmatch(debugfs(t, img, sbRootOffset, "cat /etc/fstab"))
		if m == nil || !strings.Contains(cfg, "search.fs_uuid "+m[1]+" root hd0,gpt2") ||
			!strings.Contains(cfg, "configfile $prefix/grub.cfg") {
			t.Errorf("EFI/debian/grub.cfg does not load the root filesystem's grub.cfg:\n%s", cfg)
		}
		out, err := exec.Command("mdir", "-b", "-/", "-i", fmt.Sprintf("%s@@%d", img, espOffset), "::/EFI/BOOT").CombinedOutput()
		if err != nil || strings.Contains(strings.ToLower(string(out)), "fbx64") {
			t.Errorf("EFI/BOOT must not hold the fallback (grub-install --no-nvram does not put it there): %v\n%s", err, out)
		}
	})

	t.Run("enforced", func(t *testing.T) {
		fstab := debugfs(t, img, sbRootOffset, "cat /etc/fstab")
		m := rootUUIDRE.FindStringSubmatch(fstab)
		if m == nil {
			t.Fatalf("no root in fstab:\n%s", fstab)
		}
		var console strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
		defer cancel()
		vm, err := qemuboot.Boot(ctx, img, qemuboot.SecureBoot, &console)
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Close()
		i, err := vm.Expect(10*time.Minute, `login:`, `Access Denied`, `Kernel panic`)
		if err != nil || i != 0 {
			t.Fatalf("no login prompt under Secure Boot (%v):\n%s", err, tail(console.String(), 60))
		}
		t.Logf("login prompt after %v with Secure Boot enforced", vm.Elapsed().Round(time.Second))
		if err := vm.Login("root"); err != nil {
			t.Fatalf("login: %v\n%s", err, tail(console.String(), 30))
		}
		out, err := vm.Run("findmnt -n -o UUID,OPTIONS /", time.Minute)
		if err != nil || !strings.Contains(out, m[1]) || !strings.Contains(out, "rw") {
			t.Errorf("findmnt /: %q (%v); want UUID %s, rw", out, err, m[1])
		}
		// The firmware's SecureBoot variable: 4 bytes of attributes, then
		// 1 when Secure Boot is on.
		out, err = vm.Run("od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", time.Minute)
		if f := strings.Fields(out); err != nil || len(f) == 0 || f[len(f)-1] != "1" {
			t.Errorf("SecureBoot efivar: %q, %v; want its last byte 1", out, err)
		}
		if out, err := vm.Run("mokutil --sb-state", time.Minute); err != nil || !strings.Contains(out, "SecureBoot enabled") {
			t.Errorf("mokutil --sb-state: %q, %v", out, err)
		}
		// Debian's kernel says so and locks itself down when the firmware
		// booted it with Secure Boot on.
		if out, err := vm.Run("dmesg | grep -i 'secure boot enabled'", time.Minute); err != nil {
			t.Errorf("the kernel did not report Secure Boot: %q, %v", out, err)
		}
		if out, err := vm.Run("cat /sys/kernel/security/lockdown", time.Minute); err != nil || !strings.Contains(out, "[integrity]") {
			t.Errorf("kernel lockdown: %q, %v; want [integrity]", out, err)
		}
	})

	// The firmware really checks signatures: the same image with shim on
	// the removable path replaced by the target's unsigned build of that
	// shim (package shim-unsigned), or by the signed one with one byte
	// changed, must be refused. (examples/uefi.vmdb cannot serve here:
	// the grub step installs grub-efi-amd64 with its recommends, which
	// bring grub-efi-amd64-signed and shim-signed, so it is signed too.)
	for _, c := range []struct {
		name string
		efi  func(t *testing.T) []byte
	}{
		{"unsigned shim refused", func(t *testing.T) []byte {
			return []byte(debugfs(t, img, sbRootOffset, "cat /usr/lib/shim/shimx64.efi"))
		}},
		{"tampered shim refused", func(t *testing.T) []byte {
			b := espFile(t, img, "/EFI/BOOT/BOOTX64.EFI")
			b[len(b)/2] ^= 0xff
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			efi := c.efi(t)
			if len(efi) < 1024 || efi[0] != 'M' || efi[1] != 'Z' {
				t.Fatalf("no EFI executable to put on the ESP (%d bytes)", len(efi))
			}
			bad := replaceBootEFI(t, img, efi)
			var console strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			vm, err := qemuboot.Boot(ctx, bad, qemuboot.SecureBoot, &console)
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Close()
			i, err := vm.Expect(5*time.Minute, `Access Denied`, `GNU GRUB`, `login:`)
			if err != nil || i != 0 {
				t.Fatalf("not refused by the firmware (%v):\n%s", err, tail(console.String(), 40))
			}
			t.Logf("refused (\"Access Denied\") after %v", vm.Elapsed().Round(time.Second))
		})
	}
}

// replaceBootEFI returns a copy of img whose EFI/BOOT/BOOTX64.EFI is efi.
func replaceBootEFI(t *testing.T, img string, efi []byte) string {
	t.Helper()
	dir := t.TempDir()
	bad, file := filepath.Join(dir, "bad.img"), filepath.Join(dir, "BOOTX64.EFI")
	if out, err := exec.Command("cp", "--sparse=always", img, bad).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if err := os.WriteFile(file, efi, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mcopy", "-o", "-n", "-i", fmt.Sprintf("%s@@%d", bad, espOffset), file, "::/EFI/BOOT/BOOTX64.EFI").CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v: %s", err, out)
	}
	if got := espFile(t, bad, "/EFI/BOOT/BOOTX64.EFI"); !bytes.Equal(got, efi) {
		t.Fatal("EFI/BOOT/BOOTX64.EFI was not replaced")
	}
	return bad
}
