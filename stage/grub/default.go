package grub

import (
	"fmt"
	"strings"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
)

// Defaults are the grub step's keys that end up in /etc/default/grub.
type Defaults struct {
	// Arch is the Debian architecture; with Serial it chooses the console
	// device (debarch.Console: hvc0 for ppc64*, ttyAMA0 for arm*, else
	// ttyS0).
	Arch string
	// Serial is vmdb2's `console: serial`.
	Serial bool
	// Quiet is vmdb2's `quiet`.
	Quiet bool
	// Timeout is vmdb2's `timeout` (GRUB_TIMEOUT), in seconds.
	Timeout int
	// KernelParams is vmdb2 0.27's `kernel-params`: the parameters the
	// console and quiet ones are added to. nil means DefaultKernelParams;
	// an empty list means none.
	KernelParams []string
}

// DefaultKernelParams are the kernel parameters of vmdb2's grub step when
// the spec gives no `kernel-params`.
var DefaultKernelParams = []string{"biosdevname=0", "net.ifnames=0", "consoleblank=0", "rw"}

// SerialCommand is the GRUB_SERIAL_COMMAND vmdb2 writes.
const SerialCommand = "serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"

// KernelParams returns the kernel parameters vmdb2 0.41 puts in
// GRUB_CMDLINE_LINUX_DEFAULT, in its order: `kernel-params` (or the
// default list), then for a serial console loglevel=3 and the console=
// pair, then the quiet or verbose systemd status parameters.
func KernelParams(d Defaults) []string {
	base := d.KernelParams
	if base == nil {
		base = DefaultKernelParams
	}
	// A copy: vmdb2 0.41 extends the spec's own list in place, which is
	// a bug nothing should depend on.
	p := append([]string{}, base...)
	if d.Serial {
		p = append(p, "loglevel=3", "console=tty0", "console="+debarch.Console(d.Arch)+",115200n8")
	}
	if d.Quiet {
		p = append(p, "quiet", "systemd.show_status=false", "rd.systemd.show_status=false")
	} else {
		p = append(p, "systemd.show_status=true")
	}
	return p
}

// BadKernelParamChars are the characters a kernel parameter may not hold
// here: the value goes between double quotes into /etc/default/grub,
// which grub-mkconfig (and update-grub in the booted system) source as
// shell code, so a quote, backslash, `$` or backquote would end the string
// or run a command, and a line break would end the assignment. None
// occurs in a parameter the kernel understands.
const BadKernelParamChars = "\"\\$`\n\r"

// EditDefault returns the new content of /etc/default/grub, given its
// current content, as vmdb2 0.41's grub step edits the file in place. It
// sets, in this order, GRUB_CMDLINE_LINUX_DEFAULT="<KernelParams>",
// GRUB_ENABLE_CRYPTODISK=y, GRUB_TIMEOUT=<Timeout> and, for a serial
// console, GRUB_TERMINAL=serial and GRUB_SERIAL_COMMAND="<SerialCommand>",
// each with [SetDefault].
func EditDefault(content string, d Defaults) string {
	content = SetDefault(content, "GRUB_CMDLINE_LINUX_DEFAULT", `"`+strings.Join(KernelParams(d), " ")+`"`)
	content = SetDefault(content, "GRUB_ENABLE_CRYPTODISK", "y")
	content = SetDefault(content, "GRUB_TIMEOUT", fmt.Sprint(d.Timeout))
	if d.Serial {
		content = SetDefault(content, "GRUB_TERMINAL", "serial")
		content = SetDefault(content, "GRUB_SERIAL_COMMAND", `"`+SerialCommand+`"`)
	}
	return content
}

// SetDefault sets one variable of /etc/default/grub as vmdb2 0.41's
// set_grub_default does: every line starting with "NAME=" is replaced by
// "NAME=value", a line starting with "#NAME=" is kept and "NAME=value"
// put after it; if any line matched, the whole file is written back with
// LF line ends (Python reads it with universal newlines: \n, \r\n, \r),
// else the file is kept byte for byte and "NAME=value" appended.
//
// One deliberate difference: where vmdb2 would glue the new line to a
// last line without a line break ("#GRUB_TIMEOUT=5GRUB_TIMEOUT=0"), it
// starts a line of its own here.
func SetDefault(content, name, value string) string {
	assign := name + "=" + value + "\n"
	var out strings.Builder
	found := false
	for _, line := range universalLines(content) {
		switch {
		case strings.HasPrefix(line, name+"="):
			out.WriteString(assign)
			found = true
		case strings.HasPrefix(line, "#"+name+"="):
			out.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				out.WriteByte('\n')
			}
			out.WriteString(assign)
			found = true
		default:
			out.WriteString(line)
		}
	}
	if found {
		return out.String()
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + assign
}

// universalLines splits s as Python's text files read it with universal
// newlines: at \n, \r\n and \r, each line ending in "\n" (the last one
// without it when s does not end in a line break).
func universalLines(s string) []string {
	var lines []string
	for s != "" {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i]+"\n")
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	return lines
}
