package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestLUKSBoot builds encrypted systems as an ordinary user and boots them
// under SeaBIOS, typing the passphrase at the initramfs's prompt on the
// serial console: a LUKS root beside a plain /boot, and the example of LVM
// on LUKS. In the guest, / must be the mapper device on a crypt device, and
// cryptsetup status and update-grub must work.
func TestLUKSBoot(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs", "cryptsetup")
	needMirror(t)
	defer parallelBuild(t)()
	testreq.Need(t, testreq.Boot, qemuboot.Available(qemuboot.BIOS))
	for _, c := range []struct {
		name, spec, mapper, crypt string
		stack                     []string // lsblk -s types from / down
	}{
		{"root", "testdata/luks/root-bios.vmdb", "/dev/mapper/root", "root", []string{"crypt", "part", "disk"}},
		{"luks-lvm", "examples/luks-lvm.vmdb", "/dev/mapper/vg0-root", "pv0", []string{"lvm", "crypt", "part", "disk"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The two make one tree, and so do the separate-boot and
			// LVM tests' specs (TestExamplesShareTrees): whichever
			// comes first builds its rootfs cache, the others wait for
			// it without holding a turn. The root case runs in this
			// test's turn, the second in a turn of its own.
			if c.name != "root" {
				parallelSub(t)
			}
			spec, err := os.ReadFile(filepath.Join(repoRoot(t), c.spec))
			if err != nil {
				t.Fatal(err)
			}
			tarball := specTreeCache(t, c.name, spec)
			img := buildSpec(t, c.name, string(spec), tarball)
			bootEncrypted(t, img, "hunter2", func(vm *qemuboot.VM) {
				run := func(cmd string) string {
					out, err := vm.Run(cmd, 2*time.Minute)
					if err != nil {
						t.Errorf("%v", err)
					}
					return out
				}
				if got := run("findmnt -n -o SOURCE /"); got != c.mapper {
					t.Errorf("/ is on %q, want %s", got, c.mapper)
				}
				if got := run("lsblk -n -d -o TYPE " + c.mapper); got != c.stack[0] {
					t.Errorf("lsblk -d %s: %q, want %s", c.mapper, got, c.stack[0])
				}
				// lsblk -s lists the device and what it sits on, not in
				// stacking order.
				got := strings.Fields(run("lsblk -s -n -o TYPE " + c.mapper))
				if len(got) != len(c.stack) {
					t.Errorf("lsblk -s %s: %q, want %q", c.mapper, got, c.stack)
				}
				for _, want := range c.stack {
					if !slices.Contains(got, want) {
						t.Errorf("lsblk -s %s: %q, no %s", c.mapper, got, want)
					}
				}
				if got := run("cryptsetup status " + c.crypt); !strings.Contains(got, "is active and is in use") {
					t.Errorf("cryptsetup status %s:\n%s", c.crypt, got)
				}
				run("update-grub 2>&1 | tail -3")
			})
		})
	}
}

// bootEncrypted boots img, answers the initramfs's passphrase prompt on
// the serial console, logs in as root and runs check.
func bootEncrypted(t *testing.T, img, pass string, check func(vm *qemuboot.VM)) {
	t.Helper()
	var console strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	vm, err := qemuboot.Boot(ctx, img, qemuboot.BIOS, &console)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.WaitFor(`Please unlock disk [^ ]+:`, 5*time.Minute); err != nil {
		t.Fatalf("no passphrase prompt: %v\nconsole:\n%s", err, tail(console.String(), 60))
	}
	t.Logf("passphrase prompt after %v", vm.Elapsed().Round(time.Second))
	if err := vm.Send(pass + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := vm.WaitFor("login:", 5*time.Minute); err != nil {
		t.Fatalf("no login prompt after the passphrase: %v\nconsole:\n%s", err, tail(console.String(), 60))
	}
	t.Logf("login prompt after %v", vm.Elapsed().Round(time.Second))
	if err := vm.Login("root"); err != nil {
		t.Fatalf("login: %v\n%s", err, tail(console.String(), 30))
	}
	check(vm)
}
