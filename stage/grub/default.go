package grub

import (
	"fmt"
	"strings"
)

// Defaults are the grub step's keys that end up in /etc/default/grub.
type Defaults struct {
	// Arch is the Debian architecture; with Serial it chooses the console
	// device: hvc0 for ppc64*, ttyAMA0 for arm*, else ttyS0.
	Arch string
	// Serial is vmdb2's `console: serial`.
	Serial bool
	// Quiet is vmdb2's `quiet`.
	Quiet bool
	// Timeout is vmdb2's `timeout` (GRUB_TIMEOUT), in seconds.
	Timeout int
}

// SerialCommand is the GRUB_SERIAL_COMMAND vmdb2 writes.
const SerialCommand = "serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"

// KernelParams returns the kernel parameters vmdb2 puts in
// GRUB_CMDLINE_LINUX_DEFAULT, in vmdb2's order.
func KernelParams(d Defaults) []string {
	p := []string{"biosdevname=0", "net.ifnames=0", "consoleblank=0", "rw"}
	if d.Serial {
		tty := "ttyS0"
		switch {
		case strings.Contains(d.Arch, "ppc64"):
			tty = "hvc0"
		case strings.Contains(d.Arch, "arm"):
			tty = "ttyAMA0"
		}
		p = append(p, "loglevel=3", "console=tty0", "console="+tty+",115200n8")
	}
	if d.Quiet {
		p = append(p, "quiet", "systemd.show_status=false", "rd.systemd.show_status=false")
	} else {
		p = append(p, "systemd.show_status=true")
	}
	return p
}

// EditDefault returns the new content of /etc/default/grub, given its
// current content ("" when the file does not exist: Debian's grub-pc and
// grub-efi-* packages create it, the -bin packages do not), as vmdb2's
// grub step writes it: every line starting with GRUB_CMDLINE_LINUX_DEFAULT
// is dropped and GRUB_CMDLINE_LINUX_DEFAULT="<KernelParams>" appended, line
// ends become LF; then GRUB_ENABLE_CRYPTODISK=y, GRUB_TIMEOUT=<Timeout>
// and, for a serial console, GRUB_TERMINAL=serial and GRUB_SERIAL_COMMAND
// are appended (later assignments win when the file is sourced).
func EditDefault(content string, d Defaults) string {
	var out strings.Builder
	for _, line := range splitLines(content) {
		if strings.HasPrefix(line, "GRUB_CMDLINE_LINUX_DEFAULT") {
			continue
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	fmt.Fprintf(&out, "GRUB_CMDLINE_LINUX_DEFAULT=\"%s\"\n", strings.Join(KernelParams(d), " "))
	out.WriteString("GRUB_ENABLE_CRYPTODISK=y\n")
	fmt.Fprintf(&out, "GRUB_TIMEOUT=%d\n", d.Timeout)
	if d.Serial {
		out.WriteString("GRUB_TERMINAL=serial\n")
		fmt.Fprintf(&out, "GRUB_SERIAL_COMMAND=\"%s\"\n", SerialCommand)
	}
	return out.String()
}

// splitLines splits s like Python's str.splitlines (which vmdb2 uses):
// at \n, \r\n, \r, \v, \f, \x1c-\x1e, \x85, U+2028 and U+2029, with no
// empty last element for a trailing line break.
func splitLines(s string) []string {
	var lines []string
	rs := []rune(s)
	var cur []rune
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			if i+1 < len(rs) && rs[i+1] == '\n' {
				i++
			}
			lines, cur = append(lines, string(cur)), cur[:0]
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			lines, cur = append(lines, string(cur)), cur[:0]
		default:
			cur = append(cur, r)
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}
