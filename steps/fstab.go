package steps

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// fstabKind writes /etc/fstab with vmdb2's line for every mounted tag (see
// fstabText). The UUIDs are the ones mkfs assigned in advance from the
// build seed.
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
		text, err := fstabText(b.State.Tags.All(), b.compat026())
		if err != nil {
			return err
		}
		b.Detail("fstab:\n%s", text)
		if err := b.FileOp(stage.FileOp{Op: "create-file", Root: dir, Path: "/etc/fstab", Contents: []byte(text), Perm: 0o644}); err != nil {
			return err
		}
		return b.writeCrypttab(root, dir)
	},
}

// fstabText is /etc/fstab for the mounted tags. vmdb2 0.28 and later
// write `UUID=<uuid> <mount point> <type> defaults 0 1`, sorted by mount
// point (a stable sort of the strings, so a parent comes before what is
// mounted in it); 0.26 wrote `errors=remount-ro` (an ext option, which
// other types refuse) in tag creation order.
func fstabText(tags []*Tag, compat026 bool) (string, error) {
	var mounted []*Tag
	for _, tag := range tags {
		if !tag.Mounted {
			continue
		}
		if tag.UUIDText == "" {
			return "", fmt.Errorf("Unknown UUID for tag %s (to be mounted on %s): it needs a mkfs step", tag.Name, tag.MountPoint)
		}
		mounted = append(mounted, tag)
	}
	options := "defaults"
	if compat026 {
		options = "errors=remount-ro"
	} else {
		sort.SliceStable(mounted, func(i, j int) bool { return mounted[i].MountPoint < mounted[j].MountPoint })
	}
	var lines strings.Builder
	for _, tag := range mounted {
		fmt.Fprintf(&lines, "UUID=%s %s %s %s 0 1\n", tag.UUIDText, tag.MountPoint, tag.FSType, options)
	}
	return lines.String(), nil
}

// writeCrypttab writes /etc/crypttab, as vmdb2 does, when the build opened
// LUKS containers: `NAME UUID=<luks uuid> none luks,discard` for each, in
// tag creation order (vmdb2 0.26 forgets those of its `luks` step). The
// container the root filesystem sits on also gets the `initramfs` option:
// cryptsetup-initramfs's hook finds the root's container by looking at the
// device mounted on /, which a build without device-mapper does not have,
// and includes the entries marked `initramfs` whatever it finds. The
// initramfs is then made again, so that it holds the entry.
func (b *Build) writeCrypttab(root *Tag, dir string) error {
	onRoot := map[*Tag]bool{}
	for _, t := range root.Stack() {
		onRoot[t] = true
	}
	var lines strings.Builder
	for _, tag := range b.State.Tags.All() {
		if tag.LUKS == nil {
			continue
		}
		opts := "luks,discard"
		if onRoot[tag] {
			opts += ",initramfs"
		}
		fmt.Fprintf(&lines, "%s UUID=%s none %s\n", tag.LUKS.Name, tag.LUKS.UUID, opts)
	}
	if lines.Len() == 0 {
		return nil
	}
	b.Detail("crypttab:\n%s", lines.String())
	if err := b.FileOp(stage.FileOp{Op: "create-file", Root: dir, Path: "/etc/crypttab", Contents: []byte(lines.String()), Perm: 0o644}); err != nil {
		return err
	}
	if !hasCryptroot(dir) {
		return nil
	}
	b.Progress("Remaking the initramfs so that it unlocks %s", strings.TrimSpace(lines.String()))
	return b.InNamespace(userns.Cmd{Root: dir, Argv: []string{"sh", "-ec", refreshInitramfs}, Env: targetEnv(), Virtual: true})
}

// hasCryptroot says whether the tree in dir has cryptsetup-initramfs's
// hook (looked up inside the tree: its symlinks resolve there).
func hasCryptroot(dir string) bool {
	r, err := stage.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = r.Lstat("/usr/share/initramfs-tools/hooks/cryptroot")
	return err == nil
}

// refreshInitramfs remakes the target's initramfs images when
// cryptsetup-initramfs is installed, so that they unlock what crypttab
// now lists.
const refreshInitramfs = `if [ -x /usr/sbin/update-initramfs ] && [ -e /usr/share/initramfs-tools/hooks/cryptroot ] && ls /boot/initrd.img-* >/dev/null 2>&1; then update-initramfs -u -k all; fi`
