package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
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

// raspiPi4 returns the rendered spec.
func raspiPi4(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(raspiDir(t), raspiPi4Spec))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestRaspiDryRun: the rendered Pi 4 spec plans, with its files, without a
// warning.
func TestRaspiDryRun(t *testing.T) {
	spec := raspiPi4(t)
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
// (it builds through the same steps as the Pi 4 spec).
func TestRaspi3BookwormPlans(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(corpusDir(t), "11-raspi3-2019-arm64.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	plansCleanly(t, writeWorkDir(t, rewriteCorpusSpec(t, string(orig), raspi3Bookworm)),
		`qemu-debootstrap: "bookworm"`, `"non-free-firmware"`, `"raspi-firmware"`, "bookworm main contrib non-free non-free-firmware")
}
