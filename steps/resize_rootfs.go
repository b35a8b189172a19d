package steps

import (
	"errors"

	"github.com/vmdb2-go/vmdb2/stage"
)

// resizeRootfsKind installs vmdb2's first-boot service that grows the root
// partition to the end of the disk and then its filesystem. The script
// finds the partition number from sysfs (vmdb2 counts `lsblk` lines, which
// always gives 1).
var resizeRootfsKind = &Kind{
	Name:        "resize-rootfs",
	Summary:     "grow the root partition and filesystem on first boot",
	Implemented: true,
	Keys: []Key{
		{Name: "resize-rootfs", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		_, dir, err := b.mountedTree(s.Str("resize-rootfs"))
		if err != nil {
			return err
		}
		r, err := stage.OpenRoot(dir)
		if err != nil {
			return err
		}
		hasParted := r.Exists("/sbin/parted") || r.Exists("/usr/sbin/parted")
		r.Close()
		if !hasParted {
			return errors.New("partprobe is not installed on image, can't resize: install the parted package in the image first")
		}
		for _, op := range []stage.FileOp{
			{Op: "create-file", Path: "/usr/sbin/resize-rootfs", Contents: []byte(resizeScript), Perm: 0o755},
			{Op: "create-file", Path: "/etc/systemd/system/resize-rootfs.service", Contents: []byte(resizeService), Perm: 0o644},
			{Op: "create-dir", Path: "/etc/systemd/system/systemd-remount-fs.service.requires", Perm: 0o755},
			{Op: "symlink", Path: "/etc/systemd/system/systemd-remount-fs.service.requires/resize-rootfs.service",
				Src: "/etc/systemd/system/resize-rootfs.service"},
		} {
			op.Root = dir
			if err := b.FileOp(op); err != nil {
				return err
			}
		}
		return nil
	},
}

const resizeScript = `#!/bin/sh
# Grow the root partition to the end of its disk, then its filesystem.
# Installed by vmdb2's resize-rootfs step; runs once, at first boot.
root="$(findmnt -n -o SOURCE /)"
disk="/dev/$(lsblk -no pkname "$root")"
part="$(cat "/sys/class/block/$(basename "$root")/partition")"
echo ",+" | flock "$disk" sfdisk -f "$disk" -N "$part"
sleep 5
udevadm settle
sleep 5
flock "$disk" partprobe "$disk"
mount -o remount,rw "$root"
resize2fs -f "$root"
exit 0
`

const resizeService = `[Unit]
Description=resize root file system
Before=local-fs-pre.target
DefaultDependencies=no

[Service]
Type=oneshot
TimeoutSec=infinity
ExecStart=/usr/sbin/resize-rootfs
ExecStart=/bin/systemctl --no-reload disable %n

[Install]
RequiredBy=local-fs-pre.target
`
