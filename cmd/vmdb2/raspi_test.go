package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmdb2-go/vmdb2/internal/events"
	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
)

// Debian's Raspberry Pi images in the style of its image-specs: corpus 13
// (the raspi_master.yaml template) rendered for a Raspberry Pi 4 on
// bookworm arm64 as the image-specs generator (generate-recipe.py 4
// bookworm) renders it, in testdata/raspi with this project's stand-ins
// for the rootfs/ files the spec installs (testdata/raspi/README.md).

// raspiDir is testdata/raspi.
func raspiDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "testdata", "raspi")
}

// raspiPi4Spec is the rendered spec's file name, the generator's
// raspi_VERSION_SUITE.yaml.
const raspiPi4Spec = "raspi_4_bookworm.yaml"

// raspiPi4Values are the generator's plain replacements for version 4 on
// bookworm, in its order. __GITCOMMIT__ and __BUILDTIME__ (the checkout's
// `git show` line and the time of rendering) are fixed here so that the
// rendered file, and the rootfs cache keyed by it, stay the same.
var raspiPi4Values = [][2]string{
	{"__RELEASE__", "bookworm"},
	{"__ARCH__", "arm64"},
	{"__FIRMWARE_COMPONENT__", "non-free-firmware"},
	{"__FIRMWARE_COMPONENT_OLD__", "non-free"},
	{"__LINUX_IMAGE__", "linux-image-arm64"},
	{"__DTB__", "/usr/lib/linux-image-*-arm64/broadcom/bcm*rpi*.dtb"},
	{"__SECURITY_SUITE__", "bookworm-security"},
	{"__SYSTEMD_TIMESYNCD__", "systemd-timesyncd"},
	{"__RASPI_FIRMWARE__", "raspi-firmware"},
	{"__WIRELESS_FIRMWARE__", "firmware-brcm80211"},
	{"__BLUETOOTH_FIRMWARE__", "bluez-firmware"},
	{"__SERIAL_CONSOLE__", "ttyS1,115200"},
	{"__HOST__", "rpi_4"},
	{"__TOUCH_MACHINE_ID__", ""},
	{"__GITCOMMIT__", "1b194af (raspiPardus/image-specs raspi_master.yaml, rendered for the tests)"},
	{"__BUILDTIME__", "2026-12-04 17:00"},
}

// raspiPi4Lines are the generator's line replacements (each placeholder's
// line becomes these lines at its indentation), in its order: no firmware
// package rename after buster, no extra root commands, the Pi 4's CMA
// fix-up, and backports left commented out.
var raspiPi4Lines = []struct {
	placeholder string
	lines       []string
}{
	{"__FIX_FIRMWARE_PKG_NAME__", nil},
	{"__EXTRA_ROOT_SHELL_CMDS__", nil},
	{"__EXTRA_CHROOT_SHELL_CMDS__", []string{"sed -i 's/cma=64M //' /boot/firmware/cmdline.txt"}},
	{"__BACKPORTS__", []string{"",
		"# Backports are _not_ enabled by default.",
		"# Enable them by uncommenting the following line:",
		"# deb http://deb.debian.org/debian bookworm-backports main non-free-firmware"}},
}

var (
	blankLineRE     = regexp.MustCompile(`^\s+$`)
	emptyListItemRE = regexp.MustCompile(`^\s+-\s*$`)
	placeholderRE   = regexp.MustCompile(`__[A-Z_]+__`)
)

// renderRaspiTemplate renders raspi_master.yaml as the generator does:
// the plain replacements, then each line replacement at the first line
// that is the placeholder after some indentation, then every line that
// is only white space or an empty list item is dropped.
func renderRaspiTemplate(tmpl string) string {
	for _, v := range raspiPi4Values {
		tmpl = strings.ReplaceAll(tmpl, v[0], v[1])
	}
	lines := strings.Split(strings.TrimSuffix(tmpl, "\n"), "\n")
	for _, r := range raspiPi4Lines {
		re := regexp.MustCompile(`^(\s+)` + r.placeholder)
		for i, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				var with []string
				for _, n := range r.lines {
					with = append(with, m[1]+n)
				}
				lines = slices.Replace(lines, i, i+1, with...)
				break
			}
		}
	}
	var kept []string
	for _, l := range lines {
		if !blankLineRE.MatchString(l) && !emptyListItemRE.MatchString(l) {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n") + "\n"
}

// TestRaspiRender: testdata/raspi's spec is corpus 13 rendered for the Pi
// 4 on bookworm, with no placeholder left.
func TestRaspiRender(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join(corpusDir(t), "13-raspi-master-template-2022.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(raspiDir(t), raspiPi4Spec))
	if err != nil {
		t.Fatal(err)
	}
	want := renderRaspiTemplate(string(tmpl))
	if string(got) != want {
		t.Errorf("%s is not corpus 13 as the generator renders it for 4 bookworm; rendered:\n%s", raspiPi4Spec, want)
	}
	if p := placeholderRE.FindAllString(want, -1); p != nil {
		t.Errorf("placeholders left: %v", p)
	}
}

// raspiWorkDir is a work directory holding spec as spec.vmdb and
// testdata/raspi/rootfs, which the spec's copy-file and shell steps read
// (as rootfs/…, relative to where vmdb2 runs, as in image-specs).
func raspiWorkDir(t *testing.T, spec string) string {
	t.Helper()
	dir := writeWorkDir(t, spec)
	if err := os.CopyFS(filepath.Join(dir, "rootfs"), os.DirFS(filepath.Join(raspiDir(t), "rootfs"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// raspiPi4 returns the rendered spec and its rootfs cache, keyed by the
// spec and the files its steps copy before cache-rootfs, which go into
// the cached tree (the shell step's files come after it and do not).
func raspiPi4(t *testing.T) (spec, tarball string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(raspiDir(t), raspiPi4Spec))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	// Trees cached before / lost its mount line in the namespace hold the
	// build host's device as root= in /boot/firmware/cmdline.txt.
	h.Write([]byte("root without a mount line\x00"))
	h.Write(data)
	for _, src := range cachedCopies(t, data) {
		b, err := os.ReadFile(filepath.Join(raspiDir(t), src))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", src, len(b))
		h.Write(b)
	}
	return string(data), treeCache(t, "raspi", "raspi-4-bookworm", h.Sum(nil))
}

// cachedCopies returns the src of every copy-file step before the first
// cache-rootfs step of spec; a copy-dir there fails the test (its tree
// would have to be hashed).
func cachedCopies(t *testing.T, spec []byte) []string {
	t.Helper()
	var doc struct {
		Steps []map[string]any `yaml:"steps"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, s := range doc.Steps {
		if _, ok := s["cache-rootfs"]; ok {
			return srcs
		}
		if _, ok := s["copy-dir"]; ok {
			t.Fatal("a copy-dir step before cache-rootfs: the cache key does not cover its tree")
		}
		if _, ok := s["copy-file"]; ok {
			srcs = append(srcs, s["src"].(string))
		}
	}
	t.Fatal("the spec has no cache-rootfs step")
	return nil
}

// TestRaspiDryRun: the rendered Pi 4 spec plans, with its files, without a
// warning.
func TestRaspiDryRun(t *testing.T) {
	spec, _ := raspiPi4(t)
	plansCleanly(t, raspiWorkDir(t, spec), ": qemu-debootstrap", ": apt", ": cache-rootfs", ": chroot")
}

// plansCleanly checks that spec.vmdb in dir plans without a word on
// standard error and that the plan says each of wants.
func plansCleanly(t *testing.T, dir string, wants ...string) {
	t.Helper()
	r := runVmdb2(t, dir, "", "--dry-run", "spec.vmdb", "--output", "raspi.img", "--rootfs-tarball", "rootfs.tar.zst")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("dry run: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range wants {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the plan does not say %q:\n%s", want, r.stdout)
		}
	}
}

// raspi3Bookworm is corpus 11 (Debian's Raspberry Pi 3 spec of 2019)
// brought to bookworm as a new user would: the suite, the
// non-free-firmware component (firmware-brcm80211 is there since
// bookworm) and raspi3-firmware's new name raspi-firmware.
var raspi3Bookworm = []corpusRewrite{
	{"  - qemu-debootstrap: buster\n", "  - qemu-debootstrap: bookworm\n"},
	{"    - non-free\n    unless: rootfs_unpacked\n", "    - non-free\n    - non-free-firmware\n    unless: rootfs_unpacked\n"},
	{"debian buster main contrib non-free'", "debian bookworm main contrib non-free non-free-firmware'"},
	{"    - raspi3-firmware\n", "    - raspi-firmware\n"},
}

// TestRaspi3BookwormPlans: corpus 11 brought to bookworm plans as written
// (it builds through the same steps as the Pi 4 spec, which
// TestLongRaspiPi4Boot builds).
func TestRaspi3BookwormPlans(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(corpusDir(t), "11-raspi3-2019-arm64.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	plansCleanly(t, writeWorkDir(t, rewriteCorpusSpec(t, string(orig), raspi3Bookworm)),
		`qemu-debootstrap: "bookworm"`, `"non-free-firmware"`, `"raspi-firmware"`, "bookworm main contrib non-free non-free-firmware")
}

// TestLongRaspiPi4Boot builds the rendered Pi 4 spec as an ordinary user
// (qemu-debootstrap and apt for arm64 through qemu-user when its rootfs
// cache is missing, else from the cache), checks the partition table, the
// firmware partition that raspi-firmware's hooks filled (with mtools) and
// the root filesystem, then boots the image's own kernel and initrd, taken
// from the firmware partition as the Pi's firmware would take them, on
// QEMU's virt machine and logs in as root.
func TestLongRaspiPi4Boot(t *testing.T) {
	testreq.Long(t, "the Pi 4 image's cold build takes 25 to 35 minutes through qemu-user on 2 cores (its MODULES=most initramfs alone 10 to 22)")
	checkTools(t, "mke2fs", "debugfs", "e2fsck", "sfdisk", "mdir", "mtype", "mcopy", "minfo")
	testreq.Need(t, testreq.Foreign, bootstrap.CheckArch("arm64"))
	needMirror(t)
	spec, tarball := raspiPi4(t)
	_, cached := os.Stat(tarball)
	img, r := buildInDir(t, raspiWorkDir(t, spec), "raspi", tarball, "--progress=json")
	logStepTimes(t, r.stdout, cached == nil)
	fwOff, rootOff := partitionOffset(t, img, 1), partitionOffset(t, img, 2)
	t.Run("partitions", func(t *testing.T) { checkRaspiPartitions(t, img) })
	t.Run("firmware", func(t *testing.T) { checkRaspiFirmware(t, img, fwOff) })
	t.Run("root", func(t *testing.T) { checkRaspiRoot(t, img, rootOff) })
	t.Run("boot", func(t *testing.T) {
		testreq.Need(t, testreq.Boot, qemuboot.Available(qemuboot.ARM64Kernel))
		bootRaspi(t, img, fwOff)
	})
}

// logStepTimes logs where the build's time went: its steps' durations
// from the --progress=json events, longest first.
func logStepTimes(t *testing.T, stdout string, cached bool) {
	t.Helper()
	type step struct {
		what string
		secs float64
	}
	var all []step
	total := 0.0
	for _, e := range parseEvents(t, stdout) {
		if e.Type == events.StepEnd && e.Duration != nil {
			all = append(all, step{fmt.Sprintf("step %d %s (line %d)", e.Step, e.Kind, e.Line), *e.Duration})
			total += *e.Duration
		}
	}
	slices.SortFunc(all, func(a, b step) int { return cmp.Compare(b.secs, a.secs) })
	var lines []string
	for _, s := range all[:min(8, len(all))] {
		lines = append(lines, fmt.Sprintf("  %7.1f s  %s", s.secs, s.what))
	}
	t.Logf("steps took %.1f s in all (from the rootfs cache: %v); the longest:\n%s", total, cached, strings.Join(lines, "\n"))
}

// checkRaspiPartitions: an msdos table with the FAT32 firmware partition
// from 4 MiB to 512 MiB and the Linux root after it.
func checkRaspiPartitions(t *testing.T, img string) {
	out, err := exec.Command(sbin("sfdisk"), "-d", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -d: %v", err)
	}
	for _, want := range []string{`(?m)^label: dos$`, `1 : start=\s*8192, size=\s*1040384, type=c$`, `2 : start=\s*1048576, size=\s*3047424, type=83$`} {
		if !regexp.MustCompile(`(?m)` + want).Match(out) {
			t.Errorf("sfdisk -d: no %s in\n%s", want, out)
		}
	}
}

// mtool runs an mtools program on the FAT filesystem at off of img.
func mtool(t *testing.T, img string, off int64, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, append([]string{"-i", fmt.Sprintf("%s@@%d", img, off)}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkRaspiFirmware: the firmware partition is labelled RASPIFIRM and
// holds what raspi-firmware's hooks put there (the Pi's boot files,
// config.txt, cmdline.txt, the kernel and initrd config.txt names) and the
// spec's chroot step copied (the Pi 4's device tree); cmdline.txt boots
// the root by label with the serial console, without the CMA fix-up's
// option.
func checkRaspiFirmware(t *testing.T, img string, off int64) {
	if info := mtool(t, img, off, "minfo", "::"); !strings.Contains(info, `disk label="RASPIFIRM  "`) {
		t.Errorf("minfo: not labelled RASPIFIRM:\n%s", info)
	}
	names := strings.Fields(strings.ToLower(mtool(t, img, off, "mdir", "-b", "::/")))
	kernel, initrd := raspiBootFiles(t, img, off)
	for _, want := range []string{"::/config.txt", "::/cmdline.txt", "::/bcm2711-rpi-4-b.dtb", "::/start4.elf", "::/fixup4.dat",
		"::/" + kernel, "::/" + initrd} {
		if !slices.Contains(names, strings.ToLower(want)) {
			t.Errorf("no %s on the firmware partition: %v", want, names)
		}
	}
	cmdline := mtool(t, img, off, "mtype", "::/cmdline.txt")
	if !strings.Contains(cmdline, "console=ttyS1,115200 root=") {
		t.Errorf("cmdline.txt has no serial console before root=: %q", cmdline)
	}
	// raspi-firmware's hook writes root= from `findmnt -o source /` (vmdb2
	// runs apt in a chroot without /proc: findmnt fails and the hook falls
	// back to /dev/mmcblk0p2, which the spec's sed turns into the label).
	if root := cmdlineRootRE.FindStringSubmatch(cmdline); root == nil || root[1] != "LABEL=RASPIROOT" {
		t.Errorf("cmdline.txt boots %v, want root=LABEL=RASPIROOT; another device is what findmnt showed as the source of / in the build's namespace (the host's device holding the stage): %q", root, cmdline)
	}
	if strings.Contains(cmdline, "cma=64M") || strings.Contains(cmdline, "mmcblk0p2") {
		t.Errorf("cmdline.txt was not fixed up by the spec: %q", cmdline)
	}
}

var (
	configKernelRE = regexp.MustCompile(`(?m)^kernel=(\S+)`)
	configInitrdRE = regexp.MustCompile(`(?m)^initramfs (\S+)`)
	cmdlineRootRE  = regexp.MustCompile(`\broot=(\S+)`)
)

// raspiBootFiles returns the kernel and initramfs config.txt tells the
// Pi's firmware to load.
func raspiBootFiles(t *testing.T, img string, off int64) (kernel, initrd string) {
	t.Helper()
	cfg := mtool(t, img, off, "mtype", "::/config.txt")
	k, i := configKernelRE.FindStringSubmatch(cfg), configInitrdRE.FindStringSubmatch(cfg)
	if k == nil || i == nil {
		t.Fatalf("config.txt names no kernel= or initramfs:\n%s", cfg)
	}
	return k[1], i[1]
}

// checkRaspiRoot: the root filesystem is a clean ext4 labelled RASPIROOT
// whose fstab mounts / and /boot/firmware by label, with root's password
// empty and the first-boot units enabled.
func checkRaspiRoot(t *testing.T, img string, off int64) {
	if out, err := exec.Command(sbin("e2fsck"), "-fn", fmt.Sprintf("%s?offset=%d", img, off)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	if st := debugfs(t, img, off, "stats"); !strings.Contains(st, "Filesystem volume name:   RASPIROOT\n") {
		t.Errorf("the root filesystem is not labelled RASPIROOT:\n%s", tail(st, 80))
	}
	fstab := debugfs(t, img, off, "cat /etc/fstab")
	for _, want := range []string{"LABEL=RASPIROOT  /  ", "LABEL=RASPIFIRM  /boot/firmware  vfat"} {
		if !strings.Contains(fstab, want) {
			t.Errorf("fstab has no %q:\n%s", want, fstab)
		}
	}
	if shadow := debugfs(t, img, off, "cat /etc/shadow"); !strings.HasPrefix(shadow, "root::") {
		t.Errorf("root's password is not empty: %.40q", shadow)
	}
	for _, unit := range []string{"basic.target.requires/rpi-set-sysconf.service", "multi-user.target.requires/rpi-reconfigure-raspi-firmware.service",
		"multi-user.target.requires/rpi-generate-ssh-host-keys.service"} {
		if st := debugfs(t, img, off, "stat /etc/systemd/system/"+unit); !strings.Contains(st, "Type: symlink") {
			t.Errorf("%s is not enabled:\n%s", unit, st)
		}
	}
}

// bootRaspi boots the kernel and initrd of the firmware partition at off
// on QEMU's virt machine with the image as its disk, logs in as root on
// ttyAMA0 and checks that / is RASPIROOT, read-write, and /boot/firmware
// RASPIFIRM, mounted from the fstab.
func bootRaspi(t *testing.T, img string, off int64) {
	kernel, initrd := raspiBootFiles(t, img, off)
	dir := t.TempDir()
	k := qemuboot.Kernel{Image: filepath.Join(dir, "kernel"), Initrd: filepath.Join(dir, "initrd"),
		CmdLine: "root=LABEL=RASPIROOT console=ttyAMA0"}
	mtool(t, img, off, "mcopy", "::/"+kernel, k.Image)
	mtool(t, img, off, "mcopy", "::/"+initrd, k.Initrd)
	var console strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	vm, err := qemuboot.BootKernel(ctx, img, qemuboot.ARM64Kernel, k, &console)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if i, err := vm.Expect(10*time.Minute, "login:", "Kernel panic", `\(initramfs\) $`); err != nil || i != 0 {
		t.Fatalf("no login prompt (%d, %v); console:\n%s", i, err, tail(console.String(), 60))
	}
	t.Logf("login prompt after %v", vm.Elapsed().Round(time.Second))
	if err := vm.Login("root"); err != nil {
		t.Fatalf("login: %v\n%s", err, tail(console.String(), 30))
	}
	for cmd, want := range map[string]string{
		"uname -m":                                         "aarch64",
		"findmnt -nr -o LABEL,FSTYPE,OPTIONS /":            "RASPIROOT ext4 rw,",
		"findmnt -nr -o LABEL,FSTYPE /boot/firmware":       "RASPIFIRM vfat",
		"systemctl show -P SourcePath boot-firmware.mount": "/etc/fstab",
	} {
		if out, err := vm.Run(cmd, time.Minute); err != nil || !strings.HasPrefix(out, want) {
			t.Errorf("%s: %q (%v), want %q…", cmd, out, err, want)
		}
	}
}
