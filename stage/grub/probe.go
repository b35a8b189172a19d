package grub

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// ProbeScript returns the POSIX shell script that stands in for
// grub-probe while grub-mkconfig runs. It answers for every filesystem of
// the layout: a path argument (resolved with readlink -f inside the
// target, as the real grub-probe canonicalizes it) by the filesystem with
// the longest mount point that is a prefix of it, a `--device DEV`
// argument by the filesystem one of whose device names (see
// Filesystem.deviceNames) is DEV. The answers are what the real
// grub-probe (GRUB 2.06, util/grub-probe.c) prints for that filesystem on
// the first disk:
//
//	device              /dev/mapper/NAME on an LV or LUKS, else /dev/disk/by-uuid/<UUID>
//	                    (or Filesystem.Device)
//	fs                  ext2 (for ext2/3/4), btrfs, xfs, f2fs, fat; fails for others
//	fs_uuid, fs_label   the UUID, the label
//	partuuid            the partition's PARTUUID; empty on an LV or LUKS
//	partmap             msdos or gpt (of the disk at the bottom of the stack)
//	abstraction         lvm, cryptodisk and luks2 for the layers, partition first
//	cryptodisk_uuid     each LUKS container's UUID without dashes
//	drive               (hd0,msdosN), (lvmid/VGUUID/LVUUID) or (cryptouuid/UUID)
//	compatibility_hint, bios_hints, efi_hints, arc_hints, ieee1275_hints,
//	baremetal_hints     the drive without parentheses
//	hints_string        --hint-bios=hd0,msdosN --hint-efi=hd0,msdosN for a partition,
//	                    --hint='lvmid/…' for an LV or LUKS (grub-probe's
//	                    compatibility hint for a non-BIOS disk)
//	disk                the device
//
// Any other target (msdos_parttype, zero_check, …) fails, as grub-probe
// does for a question it cannot answer; the scripts that ask treat that as
// "no". So does a path or device on no filesystem of the layout.
func ProbeScript(l Layout) (string, error) {
	if err := l.check(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(probeHeader)
	// Mount points are variables, quoted where used: a literal match
	// whatever they hold.
	for i, f := range l {
		fmt.Fprintf(&b, "m%d=%s\n", i, shellQuote(f.mountPoint()))
	}
	b.WriteString("if [ -n \"$by_device\" ]; then\n\tcase \"$arg\" in\n")
	for i, f := range l {
		quoted := make([]string, 0, 4)
		for _, d := range f.deviceNames() {
			quoted = append(quoted, shellQuote(d))
		}
		fmt.Fprintf(&b, "\t%s) fs=%d ;;\n", strings.Join(quoted, "|"), i)
	}
	b.WriteString("\tesac\nelse\n\tp=$(readlink -f -- \"$arg\") || { echo \"grub-probe (vmdb2 stand-in): failed to get canonical path of '$arg'\" >&2; exit 1; }\n")
	b.WriteString("\tcase \"$p\" in\n")
	for _, i := range l.byMountDepth() {
		if l[i].mountPoint() == "/" {
			fmt.Fprintf(&b, "\t/*) fs=%d ;;\n", i)
		} else {
			fmt.Fprintf(&b, "\t\"$m%[1]d\"|\"$m%[1]d\"/*) fs=%[1]d ;;\n", i)
		}
	}
	b.WriteString("\tesac\nfi\n")
	b.WriteString("[ -n \"$fs\" ] || { echo \"grub-probe (vmdb2 stand-in): cannot find a device for $arg\" >&2; exit 1; }\n")
	b.WriteString("case \"$fs:$target\" in\n")
	for i, f := range l {
		writeAnswers(&b, i, f)
	}
	b.WriteString("*) echo \"grub-probe (vmdb2 stand-in): cannot answer --target=$target\" >&2; exit 1 ;;\nesac\n")
	return b.String(), nil
}

// probeHeader parses grub-probe's command line: the target, whether the
// argument is a device (-d, --device: a flag, the device is the
// argument), and the first argument.
const probeHeader = `#!/bin/sh
# grub-probe stand-in, bind-mounted by vmdb2 while grub-mkconfig runs in
# the build's namespace; the image itself keeps the real grub-probe.
target=fs by_device= arg= fs=
while [ $# -gt 0 ]; do
	case "$1" in
	-t|--target) target="$2"; shift 2 || shift ;;
	--target=*) target="${1#--target=}"; shift ;;
	-t*) target="${1#-t}"; shift ;;
	-d|--device) by_device=1; shift ;;
	-m|--device-map) shift 2 || shift ;;
	--device-map=*|-m*) shift ;;
	-*) shift ;;
	*) [ -n "$arg" ] || arg="$1"; shift ;;
	esac
done
[ -n "$arg" ] || { echo "grub-probe (vmdb2 stand-in): no path or device given" >&2; exit 1; }
`

// writeAnswers writes the case arms answering every target for the
// filesystem numbered i.
func writeAnswers(b *strings.Builder, i int, f Filesystem) {
	arm := func(targets, body string) { fmt.Fprintf(b, "%s) %s ;;\n", prefixEach(i, targets), body) }
	echo := func(lines ...string) string {
		if len(lines) == 0 {
			return ":"
		}
		quoted := make([]string, len(lines))
		for j, l := range lines {
			quoted[j] = shellQuote(l)
		}
		return "printf '%s\\n' " + strings.Join(quoted, " ")
	}
	arm("device|disk", echo(f.device()))
	if fs, err := grubFS(f.Type); err == nil {
		arm("fs", echo(fs))
	}
	arm("fs_uuid", echo(f.UUID))
	arm("fs_label", echo(f.Label))
	switch {
	case len(f.Layers) > 0:
		arm("partuuid", "echo")
	case f.PartUUID != "":
		arm("partuuid", echo(f.PartUUID))
	}
	arm("partmap", echo(f.Table))
	arm("abstraction", echo(f.abstraction()...))
	arm("cryptodisk_uuid", echo(f.cryptodiskUUIDs()...))
	drive := f.drive()
	arm("drive", echo("("+drive+")"))
	arm("compatibility_hint|bios_hints|efi_hints|arc_hints|ieee1275_hints|baremetal_hints", echo(drive))
	if len(f.Layers) == 0 {
		arm("hints_string", echo("--hint-bios="+drive+" --hint-efi="+drive))
	} else {
		arm("hints_string", echo("--hint='"+drive+"'"))
	}
}

// prefixEach turns "a|b" into "N:a|N:b".
func prefixEach(i int, targets string) string {
	parts := strings.Split(targets, "|")
	for j, t := range parts {
		parts[j] = fmt.Sprintf("%d:%s", i, t)
	}
	return strings.Join(parts, "|")
}

// MkrelpathScript returns the stand-in for grub-mkrelpath while
// grub-mkconfig runs. The real one reads /proc/self/mountinfo, where the
// namespace's root is a bind mount of the stage directory, and so answers
// with the host path of the stage (/tmp/…/boot/vmlinuz) instead of
// /boot/vmlinuz. The stand-in answers as the real one does in the booted
// system: the path (resolved inside the target) relative to the root of
// the filesystem holding it (/vmlinuz-… for a separate /boot), and ""
// for a filesystem's root (10_linux appends "/vmlinuz-…").
func MkrelpathScript(l Layout) (string, error) {
	if err := l.check(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# grub-mkrelpath stand-in, bind-mounted by vmdb2 while grub-mkconfig runs in
# the build's namespace; the image itself keeps the real grub-mkrelpath.
p=
for a in "$@"; do
	case "$a" in
	-*) ;;
	*) p=$(readlink -f -- "$a") || exit 1; break ;;
	esac
done
[ -n "$p" ] || { echo "grub-mkrelpath (vmdb2 stand-in): no path given" >&2; exit 1; }
`)
	for _, i := range l.byMountDepth() {
		if mp := l[i].mountPoint(); mp != "/" {
			fmt.Fprintf(&b, "m=%s\ncase \"$p\" in \"$m\") echo; exit 0 ;; \"$m\"/*) echo \"${p#\"$m\"}\"; exit 0 ;; esac\n", shellQuote(mp))
		}
	}
	// As the real one: no trailing slash, so a filesystem's root is "".
	b.WriteString("case \"$p\" in /) echo ;; *) echo \"$p\" ;; esac\n")
	return b.String(), nil
}

// MkConfig writes the target's /boot/grub/grub.cfg with the target's own
// `grub-mkconfig -o /boot/grub/grub.cfg` (what vmdb2 runs), which reads
// /etc/default/grub and /etc/grub.d. It runs in the namespace with the
// grub-probe stand-in of ProbeScript bind-mounted over /usr/sbin/grub-probe
// and that of MkrelpathScript over /usr/bin/grub-mkrelpath, and with an
// empty file at each device name the stand-in hands out
// (/dev/disk/by-uuid/<UUID>, /dev/disk/by-partuuid/<PARTUUID>,
// /dev/mapper/NAME) in the namespace's private /dev: 10_linux writes
// root=UUID=… only when the by-uuid or by-partuuid path exists, and
// root=/dev/mapper/VG-LV for an LV only when that exists. Nothing of this
// is left in the target.
func MkConfig(ctx context.Context, t Target, l Layout) error {
	probe, err := ProbeScript(l)
	if err != nil {
		return err
	}
	relpath, err := MkrelpathScript(l)
	if err != nil {
		return err
	}
	for _, tool := range []string{"usr/sbin/grub-mkconfig", "usr/sbin/grub-probe", "usr/bin/grub-mkrelpath"} {
		if err := t.needTool(tool, "grub-common"); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "vmdb2-grub-")
	if err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	defer os.RemoveAll(work)
	files := map[string]string{"grub-probe": probe, "grub-mkrelpath": relpath, "device": ""}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o755); err != nil {
			return fmt.Errorf("grub: %w", err)
		}
	}
	binds := []userns.Bind{
		{Source: filepath.Join(work, "grub-probe"), Target: "/usr/sbin/grub-probe", ReadOnly: true},
		{Source: filepath.Join(work, "grub-mkrelpath"), Target: "/usr/bin/grub-mkrelpath", ReadOnly: true},
	}
	for _, d := range deviceNodes(l) {
		binds = append(binds, userns.Bind{Source: filepath.Join(work, "device"), Target: d, ReadOnly: true})
	}
	script := "set -e\nmkdir -p /boot/grub\nexec grub-mkconfig -o /boot/grub/grub.cfg\n"
	return t.runWith(ctx, work, defaultEnv, binds, "/bin/sh", "-c", script)
}

// deviceNodes are the device names of the layout under /dev, each once,
// in a stable order.
func deviceNodes(l Layout) []string {
	var out []string
	for _, f := range l {
		for _, d := range f.deviceNames() {
			if strings.HasPrefix(d, "/dev/") && path.Clean(d) == d {
				out = append(out, d)
			}
		}
	}
	return dedup(out)
}
