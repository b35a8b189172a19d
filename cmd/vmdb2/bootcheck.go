package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/qemuboot"
	"github.com/vmdb2-go/vmdb2/steps"
)

// defaultBootCheck is --boot-check's timeout without a value: a Debian
// bookworm image reaches its login prompt in about a minute under TCG on an
// idle machine; five leave room for a loaded CI runner.
const defaultBootCheck = 5 * time.Minute

// maxBootCheck bounds --boot-check=SECONDS.
const maxBootCheck = 24 * time.Hour

// setBootCheck handles --boot-check[=SECONDS].
func (o *options) setBootCheck(v string) error {
	if v == "" {
		o.bootCheck = defaultBootCheck
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || time.Duration(n)*time.Second > maxBootCheck {
		return usageError{fmt.Sprintf("argument --boot-check: %q is not a number of seconds from 1 to %d (e.g. --boot-check=300)", v, int(maxBootCheck.Seconds()))}
	}
	o.bootCheck = time.Duration(n) * time.Second
	return nil
}

// firmwareFor is the firmware that starts the boot loader l: SeaBIOS for
// GRUB's BIOS flavour on a PC, OVMF (amd64), AAVMF (arm64) or AAVMF32
// (armhf) for its UEFI flavour, SLOF for IEEE 1275 on 64-bit POWER.
func firmwareFor(l steps.BootLoader) (qemuboot.Firmware, error) {
	switch {
	case l.Flavour == "bios" && (l.Arch == "amd64" || l.Arch == "i386"):
		return qemuboot.BIOS, nil
	case l.Flavour == "uefi" && l.Arch == "amd64":
		return qemuboot.UEFI, nil
	case l.Flavour == "uefi" && l.Arch == "arm64":
		return qemuboot.AAVMF, nil
	case l.Flavour == "uefi" && l.Arch == "armhf":
		return qemuboot.AAVMF32, nil
	case l.Flavour == "ieee1275" && (l.Arch == "ppc64el" || l.Arch == "ppc64"):
		return qemuboot.SLOF, nil
	}
	return 0, fmt.Errorf("no firmware to boot GRUB's %s flavour on %s: --boot-check boots bios on amd64 and i386, uefi on amd64, arm64 and armhf, ieee1275 on ppc64el and ppc64", l.Flavour, l.Arch)
}

// bootCheckPlan refuses, before the build starts, a --boot-check that
// cannot be done: a spec without a grub step, a boot loader no firmware
// here boots, an emulator or firmware file this host lacks (naming the
// package to install). A grub step without `console: serial` gets a
// warning: the login prompt is looked for on the serial console.
func bootCheckPlan(plan *steps.Plan) steps.Diagnostics {
	loaders := plan.BootLoaders()
	if len(loaders) == 0 {
		return steps.Diagnostics{{File: plan.File, Severity: steps.Error,
			Msg: "--boot-check: no grub step installs a boot loader, so the image has nothing to boot (add a grub step, or leave out --boot-check)"}}
	}
	var ds steps.Diagnostics
	for _, l := range loaders {
		at := func(sev steps.Severity, line int, format string, args ...any) {
			ds = append(ds, steps.Diagnostic{File: plan.File, Line: line, Severity: sev, Msg: fmt.Sprintf(format, args...)})
		}
		fw, err := firmwareFor(l)
		if err != nil {
			at(steps.Error, l.Step.Line, "--boot-check: %v", err)
			continue
		}
		if err := qemuboot.Available(fw); err != nil {
			at(steps.Error, l.Step.Line, "--boot-check: %v", err)
		}
		if l.Step.Str("console") != "serial" {
			at(steps.Warning, l.Step.Line, "--boot-check looks for the login prompt on the serial console, and this grub step has no `console: serial`: unless the image starts a getty on the serial port itself, the check will time out")
		}
	}
	return ds
}

// bootCheck boots image with the firmware of every boot loader the build
// installed (once per firmware: a hybrid BIOS+UEFI image twice) and
// reports whether each reached a login prompt on the serial console within
// timeout. It says how long each took, or shows the console's last lines.
func bootCheck(ctx context.Context, image string, timeout time.Duration, loaders []steps.BootLoader, disp *display) bool {
	if len(loaders) == 0 {
		disp.errorf("boot check: no grub step ran (each was skipped by its unless), so this build installed no boot loader in %s; nothing was booted", image)
		return false
	}
	seen := map[qemuboot.Firmware]bool{}
	for _, l := range loaders {
		fw, err := firmwareFor(l)
		if err != nil {
			disp.errorf("boot check: %s: %v", l.Step.Where(), err)
			return false
		}
		if seen[fw] {
			continue
		}
		seen[fw] = true
		if !bootOnce(ctx, image, fw, timeout, disp) {
			return false
		}
	}
	return true
}

// bootFailures are what consoles print when the boot has failed and no
// login prompt will come, so the check need not wait for its timeout.
var bootFailures = []string{
	`Kernel panic - not syncing`,
	`grub rescue> `,
	`grub> `,  // GRUB's command line: no menu entry (no kernel) or no grub.cfg
	`Shell> `, // the UEFI shell: no boot option started
	`No bootable device`,
}

// bootOnce boots image with fw, under KVM where this process may use it,
// and waits up to timeout for a login prompt.
func bootOnce(ctx context.Context, image string, fw qemuboot.Firmware, timeout time.Duration, disp *display) bool {
	accel, why := qemuboot.TCG, ""
	if err := qemuboot.KVMAvailable(fw); err == nil {
		accel = qemuboot.KVM
	} else {
		why = fmt.Sprintf(" (no KVM: %v)", err)
	}
	bootSay(disp, "boot check: booting %s with %v under %v%s; waiting up to %v for a login prompt on the serial console", image, fw, accel, why, timeout)
	var console io.Writer
	if disp.verbose {
		console = disp.stdout
	}
	// Room for a restart after a firmware stall (startFirmware) too, so
	// that a slow second start ends as a timeout, not as a killed QEMU.
	vmCtx, cancel := context.WithTimeout(ctx, timeout+stallLimit(timeout)+time.Minute)
	defer cancel()
	vm, err := startFirmware(vmCtx, image, fw, accel, console, timeout, disp)
	if err != nil {
		disp.errorf("boot check: %v", err)
		return false
	}
	defer vm.Close()
	patterns := append([]string{`login:`}, bootFailures...)
	i, err := vm.Expect(max(timeout-vm.Elapsed(), time.Second), patterns...)
	elapsed := vm.Elapsed().Round(100 * time.Millisecond)
	quiet := vm.Quiet().Round(time.Second)
	vm.Close()
	text := cleanConsole(vm.Output())
	disp.logf("INFO", "boot check: the console (%v):\n%s", fw, text)
	switch {
	case err == nil && i == 0:
		bootSay(disp, "boot check: login prompt after %v (%v, %v)", elapsed, fw, accel)
		return true
	case err == nil:
		disp.errorf("boot check: %s did not boot with %v: the console showed %q after %v; its last lines:\n%s", image, fw, strings.TrimSpace(bootFailures[i-1]), elapsed, lastLines(text, 20))
	case ctx.Err() != nil:
		disp.errorf("boot check: stopped after %v", elapsed)
	case errors.Is(err, qemuboot.ErrTimeout):
		disp.errorf("boot check: no login prompt on the serial console of %s within %v with %v (%v); the console printed nothing in the last %v; its last lines:\n%s", image, timeout, fw, accel, quiet, lastLines(text, 20))
	case errors.Is(err, qemuboot.ErrExited):
		disp.errorf("boot check: QEMU stopped after %v, before a login prompt (%v); the console's last lines:\n%s", elapsed, vm.ExitError(), lastLines(text, 20))
	default:
		disp.errorf("boot check: %v", err)
	}
	disp.errorf("the image %s was built and kept; it did not pass the boot check", image)
	return false
}

// firmwareStall is how long a UEFI firmware may take from power-on to its
// boot manager's first "BdsDxe: " line (10 to 22 s on a loaded 2-core
// host) before the boot check takes it for stalled.
var firmwareStall = 90 * time.Second

// stallLimit is firmwareStall, or the boot's whole timeout when that is
// shorter: a check the user gave 30 seconds does not wait 90 for it.
func stallLimit(timeout time.Duration) time.Duration { return min(firmwareStall, timeout) }

// startFirmware boots image with fw and, for a UEFI firmware, waits for its
// boot manager to start; a firmware that stalled before it does is
// restarted once. Debian bookworm's AAVMF32 under QEMU 7.2's TCG sometimes
// spins forever after setting up its console, before it tries any boot
// option (5 of 367 boots of an all-zero disk on a loaded 2-core
// host, at the same address each time, with -cpu max and cortex-a15
// alike): the emulator's fault, not the image's, which the firmware had
// not yet read. Each start has the boot's timeout.
func startFirmware(ctx context.Context, image string, fw qemuboot.Firmware, accel qemuboot.Accel, console io.Writer, timeout time.Duration, disp *display) (*qemuboot.VM, error) {
	limit := stallLimit(timeout)
	for attempt := 1; ; attempt++ {
		vm, err := qemuboot.BootAccel(ctx, image, fw, accel, console)
		if err != nil || !fw.IsUEFI() {
			return vm, err
		}
		err = vm.WaitFor(`BdsDxe: `, limit)
		if err == nil || !errors.Is(err, qemuboot.ErrTimeout) || attempt == 2 {
			// A second stall, or QEMU's exit, is reported by the caller's wait.
			return vm, nil
		}
		text := cleanConsole(vm.Output())
		vm.Close()
		bootSay(disp, "boot check: %v stalled before its boot manager started (no \"BdsDxe:\" line within %v; an intermittent fault of the firmware under emulation); restarting the machine once. Its console:\n%s", fw, limit, lastLines(text, 5))
	}
}

// bootSay reports the boot check's progress on stderr (stdout may be a
// machine-read stream) and in the log.
func bootSay(disp *display, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(disp.stderr, msg)
	disp.logf("INFO", "%s", msg)
	if disp.json != nil {
		disp.json.message(msg)
	}
}

// terminalEscapes are the control sequences firmware and GRUB send to the
// serial terminal (cursor moves, colours, screen clears).
var terminalEscapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_])`)

// cleanConsole makes console output readable text: no escapes, no carriage
// returns, no other control characters than tab and newline.
func cleanConsole(s string) string {
	s = terminalEscapes.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		if r == '\r' {
			return '\n'
		}
		if r < ' ' && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// lastLines returns the last n non-blank lines of text, indented.
func lastLines(text string, n int) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimRight(l, " \t"); l != "" {
			lines = append(lines, "  | "+l)
		}
	}
	if len(lines) == 0 {
		return "  (the console printed nothing)"
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
