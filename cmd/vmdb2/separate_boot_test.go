package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

var bootUUIDRE = regexp.MustCompile(`(?m)^UUID=([0-9a-f-]{36}) /boot `)

// TestSeparateBootBoots builds a BIOS and a UEFI image whose /boot is an
// ext4 partition of its own (testdata/separate-boot; the two share one
// rootfs cache) as an ordinary user, checks that grub.cfg on /boot's
// filesystem names the kernel relative to it, that /etc/default/grub is
// edited in place with the bios spec's kernel-params and /boot/grub holds
// what grub-install leaves there (checkGrubTree), boots each, and checks
// in the guest that /boot and / are the two partitions, that update-grub
// (the real grub-probe, on the real disk) works, and the kernel's
// command line.
func TestSeparateBootBoots(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs")
	needMirror(t)
	parallelBuild(t)
	dir := filepath.Join(repoRoot(t), "testdata", "separate-boot")
	specs := map[string]string{}
	for _, name := range []string{"bios", "uefi"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".vmdb"))
		if err != nil {
			t.Fatal(err)
		}
		specs[name] = string(b)
	}
	tarball := specTreeCache(t, "separate-boot", []byte(specs["bios"])) // shared with TestLUKSBoot
	cases := []struct {
		name                string
		fw                  qemuboot.Firmware
		bootOffset, rootOff int64
		bootPart, rootPart  string
		platform            string
	}{
		{"bios", qemuboot.BIOS, 1 << 20, 257 << 20, "1", "2", "i386-pc"},
		{"uefi", qemuboot.UEFI, 129 << 20, 385 << 20, "2", "3", "x86_64-efi"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testreq.Need(t, testreq.Boot, qemuboot.Available(c.fw))
			img := buildSpec(t, c.name, specs[c.name], tarball)
			cfg := debugfs(t, img, c.bootOffset, "cat /grub/grub.cfg")
			fstab := debugfs(t, img, c.rootOff, "cat /etc/fstab")
			m := bootUUIDRE.FindStringSubmatch(fstab)
			if m == nil {
				t.Fatalf("no /boot in fstab:\n%s", fstab)
			}
			for _, want := range []string{"search --no-floppy --fs-uuid --set=root --hint-bios=hd0,"} {
				if !strings.Contains(cfg, want) {
					t.Errorf("grub.cfg lacks %q", want)
				}
			}
			if !regexp.MustCompile(`(?m)^\s+linux\s+/vmlinuz-\S+ root=UUID=`).MatchString(cfg) ||
				!strings.Contains(cfg, " "+m[1]+"\n") || strings.Contains(cfg, "/boot/vmlinuz") {
				t.Errorf("grub.cfg does not load the kernel from /boot's filesystem (UUID %s) by its path there:\n%s", m[1], cfg)
			}
			checkGrubDefaults(t, c.name, cfg, debugfs(t, img, c.rootOff, "cat /etc/default/grub"))
			checkGrubTree(t, img, c.bootOffset, c.rootOff, "/grub", c.platform)
			bootAndCheck(t, img, c.fw, c.rootOff, func(vm *qemuboot.VM) {
				checkSeparateBoot(t, vm, m[1], c.bootPart, c.rootPart)
				if c.name == "bios" {
					if out, err := vm.Run("cat /proc/cmdline", time.Minute); err != nil || !strings.Contains(out, " vmdb2.kp=1 ") || strings.Contains(out, "consoleblank") {
						t.Errorf("/proc/cmdline: %q (%v); want the spec's kernel-params", out, err)
					}
				}
			})
		})
	}
}

// checkGrubDefaults checks /etc/default/grub and grub.cfg as vmdb2 0.41
// leaves them: GRUB_TIMEOUT and GRUB_CMDLINE_LINUX_DEFAULT replaced where
// Debian's file sets them, GRUB_TERMINAL set after its commented example,
// and, in the bios spec, `kernel-params` instead of the default list.
func checkGrubDefaults(t *testing.T, name, cfg, defaults string) {
	t.Helper()
	params := "biosdevname=0 net.ifnames=0 consoleblank=0 rw"
	if name == "bios" {
		params = "biosdevname=0 net.ifnames=0 rw vmdb2.kp=1"
	}
	cmdline := `GRUB_CMDLINE_LINUX_DEFAULT="` + params + ` loglevel=3 console=tty0 console=ttyS0,115200n8 systemd.show_status=true"`
	for _, want := range []string{"\nGRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_DISTRIBUTOR=", "\n" + cmdline + "\nGRUB_CMDLINE_LINUX=\"\"\n",
		"\n#GRUB_TERMINAL=console\nGRUB_TERMINAL=serial\n", "\nGRUB_ENABLE_CRYPTODISK=y\nGRUB_SERIAL_COMMAND="} {
		if !strings.Contains(defaults, want) {
			t.Errorf("/etc/default/grub lacks %q:\n%s", want, defaults)
		}
	}
	if n := strings.Count(defaults, "\nGRUB_TIMEOUT="); n != 1 {
		t.Errorf("/etc/default/grub sets GRUB_TIMEOUT %d times, want once (edited in place)", n)
	}
	if !regexp.MustCompile(`(?m)^\s+linux\s+/vmlinuz-\S+ root=UUID=\S+ ro\s+` + regexp.QuoteMeta(params) + ` loglevel=3 `).MatchString(cfg) {
		t.Errorf("grub.cfg's kernel lines do not have the parameters %q:\n%s", params, cfg)
	}
}

// checkSeparateBoot checks in the booted guest that /boot is partition
// bootPart with UUID bootUUID and / is partition rootPart, and that
// update-grub works.
func checkSeparateBoot(t *testing.T, vm *qemuboot.VM, bootUUID, bootPart, rootPart string) {
	t.Helper()
	out, err := vm.Run("findmnt -n -o SOURCE,UUID /boot; findmnt -n -o SOURCE /", time.Minute)
	lines := strings.Fields(out)
	if err != nil || len(lines) < 3 || !regexp.MustCompile(`^/dev/[sv]da`+bootPart+`$`).MatchString(lines[0]) ||
		lines[1] != bootUUID || !regexp.MustCompile(`^/dev/[sv]da`+rootPart+`$`).MatchString(lines[2]) {
		t.Errorf("findmnt: %q (%v); want /boot on partition %s (UUID %s), / on partition %s", out, err, bootPart, bootUUID, rootPart)
	}
	out, err = vm.Run("update-grub >/tmp/ug.log 2>&1; echo rc=$?; grep -c '^\\s*linux\\s*/vmlinuz-' /boot/grub/grub.cfg", 3*time.Minute)
	if err != nil || !strings.Contains(out, "rc=0") || strings.Contains(out, "\n0") {
		log, _ := vm.Run("tail -n 20 /tmp/ug.log", time.Minute)
		t.Errorf("update-grub in the guest: %q (%v)\n%s", out, err, log)
	}
}
