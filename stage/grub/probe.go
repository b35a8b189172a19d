package grub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// ProbeScript returns the POSIX shell script that stands in for
// grub-probe while grub-mkconfig runs. Every path and device it is asked
// about is taken to be on the root filesystem (grub-mkconfig asks about /,
// /boot, /boot/grub and the font and theme files); the answers are what
// the real grub-probe would print for root on a plain partition of the
// first disk:
//
//	device              root.Device, default /dev/disk/by-uuid/<UUID>
//	fs                  ext2 (for ext2/3/4), btrfs, xfs, f2fs, fat
//	fs_uuid             the UUID
//	partuuid            root.PartUUID (fails when unknown)
//	partmap             msdos or gpt
//	abstraction         nothing (no LVM, RAID or LUKS)
//	cryptodisk_uuid     nothing
//	drive               (hd0,msdosN) or (hd0,gptN)
//	compatibility_hint  hd0,msdosN
//	bios_hints, efi_hints, arc_hints, ieee1275_hints, baremetal_hints: hd0,msdosN
//	hints_string        --hint-bios=hd0,msdosN --hint-efi=hd0,msdosN
//	disk                /dev/disk/by-uuid/<UUID>
//
// Any other target (fs_label, the zfs ones, …) fails, as grub-probe does
// for a question it cannot answer; the scripts that ask treat that as "no".
func ProbeScript(root RootFS) (string, error) {
	if err := root.check(); err != nil {
		return "", err
	}
	fs, _ := grubFS(root.Type)
	part := "hd0," + root.grubPart()
	partuuid := "exit 1"
	if root.PartUUID != "" {
		partuuid = "echo '" + root.PartUUID + "'"
	}
	return fmt.Sprintf(`#!/bin/sh
# grub-probe stand-in, bind-mounted by vmdb2 while grub-mkconfig runs in
# the build's namespace; the image itself keeps the real grub-probe.
target=fs
while [ $# -gt 0 ]; do
	case "$1" in
	-t|--target) target="$2"; shift 2 || shift ;;
	--target=*) target="${1#--target=}"; shift ;;
	-t*) target="${1#-t}"; shift ;;
	-m|--device-map) shift 2 || shift ;;
	*) shift ;;
	esac
done
case "$target" in
device) echo '%[1]s' ;;
fs) echo '%[2]s' ;;
fs_uuid) echo '%[3]s' ;;
partuuid) %[4]s ;;
partmap) echo '%[5]s' ;;
abstraction|cryptodisk_uuid) ;;
drive) echo '(%[6]s)' ;;
compatibility_hint|bios_hints|efi_hints|arc_hints|ieee1275_hints|baremetal_hints) echo '%[6]s' ;;
hints_string) echo '--hint-bios=%[6]s --hint-efi=%[6]s' ;;
disk) echo '/dev/disk/by-uuid/%[3]s' ;;
*) echo "grub-probe (vmdb2 stand-in): cannot answer --target=$target" >&2; exit 1 ;;
esac
`, root.device(), fs, root.UUID, partuuid, root.Table, part), nil
}

// MkrelpathScript stands in for grub-mkrelpath while grub-mkconfig runs.
// The real one reads /proc/self/mountinfo, where the namespace's root is
// a bind mount of the stage directory, and so answers with the host path
// of the stage (/tmp/…/boot/vmlinuz) instead of /boot/vmlinuz. As every
// path grub-mkconfig asks about is on the root filesystem, the path
// relative to its filesystem's root is the canonical path itself.
const MkrelpathScript = `#!/bin/sh
# grub-mkrelpath stand-in, bind-mounted by vmdb2 while grub-mkconfig runs in
# the build's namespace; the image itself keeps the real grub-mkrelpath.
for a in "$@"; do
	case "$a" in
	-*) ;;
	*) p=$(readlink -f -- "$a") || exit 1; echo "$p"; exit 0 ;;
	esac
done
echo "grub-mkrelpath (vmdb2 stand-in): no path given" >&2
exit 1
`

// MkConfig writes the target's /boot/grub/grub.cfg with the target's own
// `grub-mkconfig -o /boot/grub/grub.cfg` (what vmdb2 runs), which reads
// /etc/default/grub and /etc/grub.d. It runs in the namespace with the
// grub-probe stand-in of ProbeScript bind-mounted over /usr/sbin/grub-probe
// and an empty file at /dev/disk/by-uuid/<UUID> (and
// /dev/disk/by-partuuid/<PARTUUID>) in the namespace's private /dev, so
// that grub.cfg boots the kernel with root=UUID=<UUID>; the stand-in of
// MkrelpathScript replaces /usr/bin/grub-mkrelpath the same way. Nothing
// of this is left in the target.
func MkConfig(ctx context.Context, t Target, root RootFS) error {
	script, err := ProbeScript(root)
	if err != nil {
		return err
	}
	if err := t.needTool("usr/sbin/grub-mkconfig", "grub-common"); err != nil {
		return err
	}
	if err := t.needTool("usr/sbin/grub-probe", "grub-common"); err != nil {
		return err
	}
	if err := t.needTool("usr/bin/grub-mkrelpath", "grub-common"); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "vmdb2-grub-")
	if err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	defer os.RemoveAll(work)
	probe := filepath.Join(work, "grub-probe")
	if err := os.WriteFile(probe, []byte(script), 0o755); err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	relpath := filepath.Join(work, "grub-mkrelpath")
	if err := os.WriteFile(relpath, []byte(MkrelpathScript), 0o755); err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	node := filepath.Join(work, "device")
	if err := os.WriteFile(node, nil, 0o644); err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	binds := []userns.Bind{
		{Source: probe, Target: "/usr/sbin/grub-probe", ReadOnly: true},
		{Source: relpath, Target: "/usr/bin/grub-mkrelpath", ReadOnly: true},
		{Source: node, Target: "/dev/disk/by-uuid/" + root.UUID, ReadOnly: true},
	}
	if root.PartUUID != "" {
		binds = append(binds, userns.Bind{Source: node, Target: "/dev/disk/by-partuuid/" + root.PartUUID, ReadOnly: true})
	}
	if d := root.device(); strings.HasPrefix(d, "/dev/") && !strings.HasPrefix(d, "/dev/disk/by-uuid/") {
		binds = append(binds, userns.Bind{Source: node, Target: d, ReadOnly: true})
	}
	script = "set -e\nmkdir -p /boot/grub\nexec grub-mkconfig -o /boot/grub/grub.cfg\n"
	return t.runWith(ctx, work, defaultEnv, binds, "/bin/sh", "-c", script)
}
