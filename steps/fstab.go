package steps

import (
	"fmt"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage"
)

// fstabKind writes /etc/fstab with vmdb2's line for every mounted tag, in
// tag creation order: `UUID=<uuid> <mount point> <type> errors=remount-ro 0 1`.
// The UUIDs are the ones mkfs assigned in advance from the build seed.
var fstabKind = &Kind{
	Name:        "fstab",
	Summary:     "write /etc/fstab for the mounted filesystems",
	Implemented: true,
	Keys: []Key{
		{Name: "fstab", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		root, err := b.State.Tags.Get(s.Str("fstab"))
		if err != nil {
			return err
		}
		if !root.Mounted {
			return fmt.Errorf("tag %s is not mounted", root.Name)
		}
		dir, err := b.tagDir(root)
		if err != nil {
			return err
		}
		var lines strings.Builder
		for _, tag := range b.State.Tags.All() {
			if !tag.Mounted {
				continue
			}
			if tag.UUIDText == "" {
				return fmt.Errorf("Unknown UUID for tag %s (to be mounted on %s): it needs a mkfs step", tag.Name, tag.MountPoint)
			}
			fmt.Fprintf(&lines, "UUID=%s %s %s errors=remount-ro 0 1\n", tag.UUIDText, tag.MountPoint, tag.FSType)
		}
		b.Detail("fstab:\n%s", lines.String())
		return b.FileOp(stage.FileOp{Op: "create-file", Root: dir, Path: "/etc/fstab", Contents: []byte(lines.String()), Perm: 0o644})
	},
}
