package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
)

// TestIEEE1275BadInput: `grub: ieee1275` refuses bad PReP partitions and
// non-PowerPC targets with a clear message before anything is installed
// or written (these checks come before the target's architecture is
// needed, so they run on any host).
func TestIEEE1275BadInput(t *testing.T) {
	checkTools(t, "mke2fs", "sfdisk")
	part := func(start, end, tag string) string {
		return "- mkpart: primary\n  device: \"{{ output }}\"\n  start: " + start + "\n  end: " + end + "\n  tag: " + tag + "\n"
	}
	spec := func(prepEnd, extra, grub string) string {
		return "steps:\n- mkimg: \"{{ output }}\"\n  size: 64M\n- mklabel: msdos\n  device: \"{{ output }}\"\n" +
			part("1MiB", prepEnd, "prep") + part("9MiB", "100%", "/") +
			"- mkfs: ext4\n  partition: /\n" + extra + "- mount: /\n- grub: ieee1275\n  tag: /\n" + grub
	}
	cases := []struct{ name, spec, want string }{
		{"unknown prep tag", spec("9MiB", "", "  prep: nosuch\n"), "the PReP boot partition: Unknown tag: nosuch"},
		{"prep with a filesystem", spec("9MiB", "- mkfs: ext2\n  partition: prep\n", "  prep: prep\n"), "has a ext2 filesystem"},
		{"prep too small", spec("1100KiB", "", "  prep: prep\n"), "too small for GRUB's core.elf"},
		{"not a PowerPC target", spec("9MiB", "", "  prep: prep\n"), "ieee1275 installs GRUB for PowerPC Open Firmware machines"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeWorkDir(t, c.spec)
			r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", r.code, c.want, r.stderr)
			}
			// Refused before anything was written (Plan.Preflight): not
			// even the image exists.
			if _, err := os.Stat(filepath.Join(dir, "out.img")); !os.IsNotExist(err) {
				t.Errorf("the image was created (%v)", err)
			}
			noStageLeft(t, filepath.Join(dir, "tmp"))
		})
	}
}

// partTable is what `sfdisk -J` says about an image's partition table.
type partTable struct {
	Label      string `json:"label"`
	SectorSize int64  `json:"sectorsize"`
	Partitions []struct {
		Node     string `json:"node"`
		Start    int64  `json:"start"`
		Type     string `json:"type"`
		Bootable bool   `json:"bootable"`
	} `json:"partitions"`
}

// readPartTable reads img's partition table with `sfdisk -J`.
func readPartTable(t *testing.T, img string) partTable {
	t.Helper()
	out, err := exec.Command(sbin("sfdisk"), "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J %s: %v", img, err)
	}
	var v struct {
		PartitionTable partTable `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("sfdisk -J %s: %v\n%s", img, err, out)
	}
	if v.PartitionTable.SectorSize == 0 {
		v.PartitionTable.SectorSize = 512
	}
	return v.PartitionTable
}

// partType returns sfdisk's type of partition n (1-based) of img and
// whether it is the active (bootable) one.
func partType(t *testing.T, img string, n int) (string, bool) {
	t.Helper()
	tab := readPartTable(t, img)
	if len(tab.Partitions) < n {
		t.Fatalf("%s has no partition %d: %+v", img, n, tab)
	}
	p := tab.Partitions[n-1]
	return p.Type, p.Bootable
}

// needForeignHost fails t, with the fix, when this host cannot run
// arch's programs through qemu-user or cannot boot fw (skips it under
// -short or VMDB2_TEST_SKIP=foreign or boot).
func needForeignHost(t testing.TB, arch string, fw qemuboot.Firmware) {
	t.Helper()
	testreq.Need(t, testreq.Foreign, bootstrap.CheckArch(arch))
	needFirmware(t, fw)
}

// needFirmware fails t, naming the packages to install, when this host
// lacks fw's emulator or firmware files (skips it under -short or
// VMDB2_TEST_SKIP=boot).
func needFirmware(t testing.TB, fw qemuboot.Firmware) {
	t.Helper()
	testreq.Need(t, testreq.Boot, qemuboot.Available(fw))
}

// TestIEEE1275Boot builds examples/ppc64el.vmdb as an ordinary user
// (Debian bookworm ppc64el through qemu-user, GRUB's core.elf in the PReP
// partition), boots it on QEMU's pseries machine with SLOF (TCG), logs in
// as root on hvc0 and checks that / is the image's root filesystem (by
// UUID), mounted read-write.
func TestIEEE1275Boot(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs", "sfdisk")
	needForeignHost(t, "ppc64el", qemuboot.SLOF)
	needMirror(t)
	parallelForeign(t)
	img := buildExample(t, "ppc64el")

	// The PReP partition (1 MiB - 9 MiB) has type 0x41, is the active
	// one (SLOF wants both on msdos) and starts with GRUB's core.elf, a
	// 32-bit big-endian PowerPC ELF.
	if typ, active := partType(t, img, 1); typ != "41" || !active {
		t.Errorf("PReP partition type %s, active %v; want 41, active", typ, active)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 20)
	_, err = f.ReadAt(head, 1<<20)
	f.Close()
	if err != nil || !bytes.HasPrefix(head, []byte("\x7fELF\x01\x02")) || head[19] != 20 {
		t.Fatalf("no PowerPC ELF at the start of the PReP partition: % x (%v)", head, err)
	}
	const rootOffset = 9 << 20
	fstab := debugfs(t, img, rootOffset, "cat /etc/fstab")
	m := rootUUIDRE.FindStringSubmatch(fstab)
	if m == nil {
		t.Fatalf("no root in fstab:\n%s", fstab)
	}

	var console strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	vm, err := qemuboot.BootPPC64(ctx, img, &console)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	// SLOF loads core.elf from the PReP partition; GRUB finds the root by
	// UUID and boots the kernel from grub.cfg.
	if err := vm.WaitFor(`GNU GRUB|Booting .Debian GNU/Linux`, 3*time.Minute); err != nil {
		t.Fatalf("GRUB did not start: %v\nconsole:\n%s", err, tail(console.String(), 60))
	}
	t.Logf("GRUB after %v", vm.Elapsed().Round(time.Second))
	if err := vm.WaitFor("login:", 8*time.Minute); err != nil {
		t.Fatalf("no login prompt: %v\nconsole:\n%s", err, tail(console.String(), 60))
	}
	t.Logf("login prompt after %v", vm.Elapsed().Round(time.Second))
	if err := vm.Login("root"); err != nil {
		t.Fatalf("login: %v\n%s", err, tail(console.String(), 30))
	}
	out, err := vm.Run("findmnt -n -o UUID,OPTIONS /", time.Minute)
	if err != nil || !strings.Contains(out, m[1]) || !strings.Contains(" "+out, " rw") {
		t.Errorf("findmnt /: %q (%v); want UUID %s, rw", out, err, m[1])
	}
	if out, err := vm.Run("touch /x && echo written", time.Minute); err != nil || !strings.Contains(out, "written") {
		t.Errorf("root is not writable: %q %v", out, err)
	}
	if out, err := vm.Run("uname -m; cat /proc/cmdline", time.Minute); err != nil || !strings.HasPrefix(out, "ppc64le") || !strings.Contains(out, "console=hvc0") {
		t.Errorf("uname -m / cmdline: %q %v", out, err)
	}
}
