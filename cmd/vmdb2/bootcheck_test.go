package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/steps"
)

// checkBootCheckPassed checks that a --boot-check run's stderr reports a
// login prompt under each of fws, in that order.
func checkBootCheckPassed(t *testing.T, stderr string, fws ...qemuboot.Firmware) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^boot check: login prompt after [0-9.]+(ms|s|m[0-9.]+s) \((.*), (TCG|KVM)\)$`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(stderr, -1) {
		got = append(got, m[2])
		t.Log(m[0])
	}
	var want []string
	for _, fw := range fws {
		want = append(want, fw.String())
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("boot check reported login prompts under %q, want %q:\n%s", got, want, stderr)
	}
}

// exampleWith returns examples/NAME.vmdb with every line matching old
// replaced by new.
func exampleWith(t *testing.T, name, old, new string) string {
	t.Helper()
	spec, _ := exampleSpec(t, name)
	out := regexp.MustCompile(old).ReplaceAllString(spec, new)
	if out == spec {
		t.Fatalf("examples/%s.vmdb has no %q", name, old)
	}
	return out
}

// TestBootCheckArguments: --boot-check's value is a positive number of
// seconds given with "=", and the option does not go with
// --check-reproducible.
func TestBootCheckArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
		err  string
	}{
		{[]string{"--boot-check", "s.vmdb"}, defaultBootCheck, ""},
		{[]string{"--boot-check=30", "s.vmdb"}, 30 * time.Second, ""},
		{[]string{"--boot=45", "s.vmdb"}, 45 * time.Second, ""},
		{[]string{"--boot-check=0", "s.vmdb"}, 0, `"0" is not a number of seconds`},
		{[]string{"--boot-check=1m", "s.vmdb"}, 0, `"1m" is not a number of seconds`},
		{[]string{"--boot-check=99999999", "s.vmdb"}, 0, "from 1 to 86400"},
		{[]string{"--boot-check", "--check-reproducible", "s.vmdb"}, 0, "cannot be combined"},
	} {
		o, err := parseArgs(c.args)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v, want an error with %q", c.args, err, c.err)
		case c.err == "" && (err != nil || o.bootCheck != c.want):
			t.Errorf("%q: %v, %v; want %v", c.args, o, err, c.want)
		}
	}
}

// TestFirmwareFor: the firmware comes from the grub step's flavour and the
// target's architecture; what no firmware here boots is refused.
func TestFirmwareFor(t *testing.T) {
	for _, c := range []struct {
		flavour, arch string
		want          qemuboot.Firmware
		ok            bool
	}{
		{"bios", "amd64", qemuboot.BIOS, true},
		{"bios", "i386", qemuboot.BIOS, true},
		{"uefi", "amd64", qemuboot.UEFI, true},
		{"uefi", "arm64", qemuboot.AAVMF, true},
		{"uefi", "armhf", qemuboot.AAVMF32, true},
		{"ieee1275", "ppc64el", qemuboot.SLOF, true},
		{"ieee1275", "ppc64", qemuboot.SLOF, true},
		{"bios", "arm64", 0, false},
		{"uefi", "i386", 0, false},
		{"uefi", "riscv64", 0, false},
		{"uefi", "armel", 0, false},
		{"ieee1275", "powerpc", 0, false},
	} {
		fw, err := firmwareFor(steps.BootLoader{Flavour: c.flavour, Arch: c.arch})
		if c.ok && (err != nil || fw != c.want) {
			t.Errorf("%s on %s: %v, %v; want %v", c.flavour, c.arch, fw, err, c.want)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "no firmware to boot GRUB's "+c.flavour+" flavour on "+c.arch)) {
			t.Errorf("%s on %s: %v, %v; want a refusal", c.flavour, c.arch, fw, err)
		}
	}
}

// plannedForBootCheck plans spec and simulates it (on a host stand-in
// that has every tool), as loadPlan does.
func plannedForBootCheck(t *testing.T, spec string) *steps.Plan {
	t.Helper()
	raw, ds := steps.Load("spec.vmdb", []byte(spec))
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	vars := steps.Vars{Output: "out.img", RootfsTarball: "/nonexistent/rootfs.tar", Arch: "amd64"}
	plan, ds := steps.NewPlan(steps.DefaultRegistry(), raw, vars)
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	host := steps.Host{
		Output: vars.Output, RootfsTarball: vars.RootfsTarball,
		Namespace:  func() error { return nil },
		ToolFound:  func(string) bool { return true },
		Stat:       os.Stat,
		ProbeImage: func(string, int64) error { return nil },
	}
	if ds := plan.Preflight(host); ds.HasErrors() {
		t.Fatal(ds)
	}
	return plan
}

// TestBootCheckPlanNeedsHostFirmware: a host without the emulator or the
// firmware files the image needs is refused at plan time, at the grub
// step's line, naming the packages to install.
func TestBootCheckPlanNeedsHostFirmware(t *testing.T) {
	uefi, _ := exampleSpec(t, "uefi")
	hybrid, _ := exampleSpec(t, "hybrid")
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		name, spec string
		set        *string
		want       []string
	}{
		{"qemu-system-x86_64", uefi, &qemuboot.QEMU, []string{"install qemu-system-x86"}},
		{"OVMF", uefi, &qemuboot.OVMFCode, []string{"install ovmf"}},
		{"OVMF of a hybrid", hybrid, &qemuboot.OVMFVars, []string{"install ovmf"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old := *c.set
			*c.set = missing
			defer func() { *c.set = old }()
			var errs steps.Diagnostics
			for _, d := range bootCheckPlan(plannedForBootCheck(t, c.spec)) {
				if d.Severity == steps.Error {
					errs = append(errs, d)
				}
			}
			if len(errs) != 1 || !strings.HasPrefix(errs[0].String(), "spec.vmdb:") || !strings.Contains(errs[0].Msg, missing) {
				t.Fatalf("got %v, want one refusal at the grub step naming %s", errs, missing)
			}
			for _, w := range c.want {
				if !strings.Contains(errs[0].Msg, w) {
					t.Errorf("%s: no %q", errs[0], w)
				}
			}
		})
	}
	// Both of the hybrid's boot loaders are seen, in order.
	var got []string
	for _, l := range plannedForBootCheck(t, hybrid).BootLoaders() {
		got = append(got, l.Flavour+"/"+l.Arch)
	}
	if strings.Join(got, " ") != "bios/amd64 uefi/amd64" {
		t.Errorf("hybrid's boot loaders: %q", got)
	}
}

// TestBootCheckPlanRefusals: what --boot-check cannot do is refused before
// the build starts (here by --dry-run, which refuses what a build would):
// a spec with no grub step, a boot loader no firmware boots; a grub step
// without a serial console gets a warning. Without --boot-check these
// specs plan.
func TestBootCheckPlanRefusals(t *testing.T) {
	hello, _ := exampleSpec(t, "hello")
	armBIOS := exampleWith(t, "bios", `(?m)^    mirror: .*$`, "$0\n    arch: arm64")
	noSerial := exampleWith(t, "bios", `(?m)^    console: serial\n`, "")
	for _, c := range []struct {
		name, spec string
		code       int
		want       string
	}{
		{"no grub step", hello, 1, "spec.vmdb: --boot-check: no grub step installs a boot loader"},
		{"bios on arm64", armBIOS, 1, "spec.vmdb:51: --boot-check: no firmware to boot GRUB's bios flavour on arm64"},
		{"no serial console", noSerial, 0, "spec.vmdb:50: warning: --boot-check looks for the login prompt on the serial console"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeWorkDir(t, c.spec)
			args := []string{"spec.vmdb", "--dry-run", "--rootfs-tarball", "none.tar.zst"}
			if r := runVmdb2(t, dir, "", args...); r.code != 0 || strings.Contains(r.stderr, "boot-check") {
				t.Fatalf("without --boot-check: exit %d\n%s", r.code, r.stderr)
			}
			r := runVmdb2(t, dir, "", append(args, "--boot-check=30")...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want %d and %q:\n%s", r.code, c.code, c.want, r.stderr)
			}
		})
	}
}

// fakeConsoleQEMU stands in for qemu-system-x86_64: it prints console and
// then sleeps (or exits with status 3 when console ends in EXIT).
func fakeConsoleQEMU(t *testing.T, console string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	text, exits := strings.CutSuffix(console, "EXIT")
	script := "#!/bin/sh\nprintf '%b' '" + text + "'\n"
	if exits {
		script += "echo 'fake: no such machine' >&2\nexit 3\n"
	} else {
		script += "exec sleep 60\n"
	}
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := qemuboot.QEMU
	qemuboot.QEMU = p
	t.Cleanup(func() { qemuboot.QEMU = old })
}

// TestBootCheckConsole: what the boot check makes of a console (through a
// stand-in QEMU): a login prompt passes with the time it took; a boot
// that ends at GRUB's prompt fails without waiting for the timeout; no
// prompt in time, or QEMU stopping, fails; each failure shows the
// console's last lines, cleaned of terminal escapes, and keeps the image.
func TestBootCheckConsole(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, console string
		ok            bool
		want          []string
	}{
		{"login prompt", `SeaBIOS\r\nDebian GNU/Linux 12 bios ttyS0\r\n\r\nbios login: `, true,
			[]string{"boot check: login prompt after "}},
		{"GRUB prompt", `\033[2J\033[1;1HGNU GRUB  version 2.06\r\n\r\n\033[0mgrub> `, false,
			[]string{`the console showed "grub>"`, "\n  | GNU GRUB  version 2.06\n  | grub>\n", "was built and kept"}},
		{"kernel panic", `Loading Linux\r\n[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n`, false,
			[]string{`the console showed "Kernel panic - not syncing"`, "  | Loading Linux\n"}},
		{"timeout", `Loading Linux 6.1.0-26-amd64 ...\r\n`, false,
			[]string{"no login prompt on the serial console of " + img + " within 1s", "; the console printed nothing in the last ", "  | Loading Linux 6.1.0-26-amd64 ...", "was built and kept"}},
		{"QEMU exits", `EXIT`, false,
			[]string{"QEMU stopped after", "fake: no such machine", "(the console printed nothing)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fakeConsoleQEMU(t, c.console)
			var stdout, stderr bytes.Buffer
			disp := &display{stdout: &stdout, stderr: &stderr, now: time.Now}
			start := time.Now()
			ok := bootOnce(t.Context(), img, qemuboot.BIOS, time.Second, disp)
			if ok != c.ok {
				t.Errorf("passed: %v, want %v", ok, c.ok)
			}
			for _, w := range append(c.want, "boot check: booting "+img+" with BIOS (SeaBIOS) under ") {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("no %q in\n%s", w, stderr.String())
				}
			}
			if strings.ContainsAny(stderr.String(), "\x1b\r") || stdout.Len() != 0 {
				t.Errorf("escapes on stderr or anything on stdout:\n%q\n%q", stderr.String(), stdout.String())
			}
			t.Logf("%v\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
		})
	}
}

// checkBootCheckNoKernel builds the bios example without its kernel
// (removed before the grub step, so GRUB's menu is empty) with
// --boot-check=30, as root when the tests run as root (KVM where it can be
// used) and from the example's rootfs cache (TestExamplesBoot runs it
// after building the example, so the cache is there): the boot check
// fails before its timeout at GRUB's prompt, exits 1 with the console's
// last lines and keeps the image, and the build leaves nothing in TMPDIR.
func checkBootCheckNoKernel(t *testing.T) {
	testreq.Need(t, testreq.Boot, qemuboot.Available(qemuboot.BIOS))
	_, tarball := exampleSpec(t, "bios")
	spec := exampleWith(t, "bios", `(?m)^  - fstab: /\n`,
		"  - chroot: /\n    shell: rm -f /boot/vmlinuz-* /boot/initrd.img-* /vmlinuz* /initrd.img*\n\n$0")
	dir := writeWorkDir(t, spec)
	unlock := lockTreeCache(t, tarball)
	start := time.Now()
	r := runVmdb2Env(t, dir, []string{"TMPDIR=" + filepath.Join(dir, "tmp")},
		"spec.vmdb", "--output", "nokernel.img", "--rootfs-tarball", tarball, "--boot-check=30")
	unlock()
	t.Logf("build and boot check: %v\n%s", time.Since(start).Round(time.Second), r.stderr)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	for _, want := range []string{
		"boot check: booting nokernel.img with BIOS (SeaBIOS) under ",
		`did not boot with BIOS (SeaBIOS): the console showed "grub>" after `,
		"its last lines:\n  | ",
		"ERROR: the image nokernel.img was built and kept",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("no %q in stderr", want)
		}
	}
	if strings.Contains(r.stderr, "login prompt after") {
		t.Error("a login prompt was reported")
	}
	if _, err := os.Stat(filepath.Join(dir, "nokernel.img")); err != nil {
		t.Errorf("the image was not kept: %v", err)
	}
	noStageLeft(t, filepath.Join(dir, "tmp"))
}

// TestBootCheckUEFIFirmware boots a disk with nothing on it with the real
// OVMF, AAVMF and AAVMF32 under TCG, as --boot-check would: each firmware starts
// with the machine's arguments, prints on the serial console and, finding
// nothing to boot, ends in the UEFI shell, where the check stops without
// waiting for its timeout.
func TestBootCheckUEFIFirmware(t *testing.T) {
	checkTools(t)
	parallelBuild(t)
	img := filepath.Join(t.TempDir(), "empty.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fw := range []qemuboot.Firmware{qemuboot.UEFI, qemuboot.AAVMF, qemuboot.AAVMF32} {
		t.Run(fw.String(), func(t *testing.T) {
			testreq.Need(t, testreq.Boot, qemuboot.Available(fw))
			var stdout, stderr bytes.Buffer
			disp := &display{stdout: &stdout, stderr: &stderr, now: time.Now}
			if bootOnce(t.Context(), img, fw, 5*time.Minute, disp) {
				t.Fatalf("an empty disk passed:\n%s", stderr.String())
			}
			if want := `the console showed "Shell>"`; !strings.Contains(stderr.String(), want) {
				t.Fatalf("no %q in\n%s", want, stderr.String())
			}
			t.Log(stderr.String())
		})
	}
}

// TestBootCheckFirmwareStall: a UEFI firmware (a stand-in OVMF) that prints
// its banner and then nothing is restarted once: a second start that
// reaches its boot manager and a login prompt passes; a firmware that
// stalls again fails as a boot without a login prompt, after two starts.
func TestBootCheckFirmwareStall(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"CODE.fd", "VARS.fd"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oldCode, oldVars, oldStall := qemuboot.OVMFCode, qemuboot.OVMFVars, firmwareStall
	qemuboot.OVMFCode, qemuboot.OVMFVars = filepath.Join(dir, "CODE.fd"), filepath.Join(dir, "VARS.fd")
	t.Cleanup(func() { qemuboot.OVMFCode, qemuboot.OVMFVars, firmwareStall = oldCode, oldVars, oldStall })
	for _, c := range []struct {
		name   string
		stalls int // starts that stall before the good one
		ok     bool
		// The limit of the stall wait: firmwareStall, or the boot's
		// timeout when that is shorter.
		limit time.Duration
	}{{"once", 1, true, 1 * time.Second}, {"twice", 2, false, 1 * time.Second}, {"timeout shorter", 1, true, 2 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			starts := filepath.Join(t.TempDir(), "starts")
			fakeConsoleQEMU(t, "")
			script := fmt.Sprintf("#!/bin/sh\necho x >> %s\nprintf 'UEFI firmware\\r\\n'\n"+
				"if [ $(wc -l < %s) -le %d ]; then exec sleep 60; fi\n"+
				"printf 'BdsDxe: loading Boot0001\\r\\nDebian GNU/Linux 12 uefi ttyS0\\r\\nuefi login: '\nexec sleep 60\n",
				starts, starts, c.stalls)
			if err := os.WriteFile(qemuboot.QEMU, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			disp := &display{stdout: &stdout, stderr: &stderr, now: time.Now}
			firmwareStall = 1 * time.Second
			timeout := 3 * time.Second
			if c.name == "timeout shorter" {
				firmwareStall, timeout = time.Hour, c.limit
			}
			if ok := bootOnce(t.Context(), img, qemuboot.UEFI, timeout, disp); ok != c.ok {
				t.Errorf("passed: %v, want %v", ok, c.ok)
			}
			want := []string{"boot check: UEFI (OVMF) stalled before its boot manager started (no \"BdsDxe:\" line within " + c.limit.String() + ";",
				"restarting the machine once", "  | UEFI firmware"}
			if c.ok {
				want = append(want, "boot check: login prompt after ")
			} else {
				want = append(want, "no login prompt on the serial console of "+img)
			}
			for _, w := range want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("no %q in\n%s", w, stderr.String())
				}
			}
			if n := strings.Count(stderr.String(), "restarting the machine once"); n != 1 {
				t.Errorf("restarted %d times, want once:\n%s", n, stderr.String())
			}
			if b, err := os.ReadFile(starts); err != nil || strings.Count(string(b), "x") != 2 {
				t.Errorf("QEMU started %q times (%v), want twice", b, err)
			}
			t.Log(stderr.String())
		})
	}
}
