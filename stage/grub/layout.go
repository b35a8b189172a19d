package grub

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Filesystem is what the build knows about one filesystem of the target:
// where it is mounted, its identity, and the stack of block devices it
// sits on, down to a partition of the image.
type Filesystem struct {
	// MountPoint is the filesystem's mount point in the target, resolved
	// inside the target as the kernel would (no symbolic link on the way);
	// "" means "/".
	MountPoint string
	// UUID is the filesystem UUID as blkid prints it.
	UUID string
	// Type is the Linux filesystem type: ext2, ext3, ext4, btrfs, xfs, f2fs
	// or vfat for a filesystem GRUB reads; any other type is allowed for a
	// filesystem GRUB is never asked to read.
	Type string
	// Label is the filesystem label ("" for none).
	Label string
	// Table is the partition table type of the disk at the bottom of the
	// stack: "msdos" or "gpt".
	Table string
	// Partition is the number (1-based) of the partition at the bottom of
	// the stack.
	Partition int
	// PartUUID is that partition's PARTUUID as the Linux kernel shows it
	// (the GPT partition GUID in lower case, or the msdos disk signature
	// and number as "xxxxxxxx-NN"); "" if unknown.
	PartUUID string
	// Layers are the block devices between the filesystem and the
	// partition, the one holding the filesystem first: an LV, an opened
	// LUKS container, in any nesting.
	Layers []Layer
	// Device is the name grub-mkconfig is told the device has. It is only
	// written into grub.cfg when the UUID cannot be used; "" means
	// /dev/mapper/NAME for a filesystem on a layer, else
	// /dev/disk/by-uuid/<UUID>, which exists in every booted system with
	// udev.
	Device string
}

// Layer is one block device of a filesystem's stack above its partition.
type Layer struct {
	// Kind is LayerLVM or LayerLUKS.
	Kind string
	// Name is the device-mapper name the booted system gives the device
	// (/dev/mapper/NAME): VG-LV (dashes in names doubled) for an LV, the
	// crypttab name for LUKS.
	Name string
	// VGUUID and LVUUID are an LV's ids in LVM's 38-character dashed form.
	VGUUID, LVUUID string
	// UUID is a LUKS container's UUID as `cryptsetup luksUUID` prints it.
	UUID string
}

// The kinds of Layer.
const (
	LayerLVM  = "lvm"
	LayerLUKS = "luks"
)

// Layout is every filesystem of the target that GRUB or grub-mkconfig may
// be asked about. Exactly one is mounted at /.
type Layout []Filesystem

// unsafeChars are the characters refused in the values that also go into
// GRUB's configuration or name device nodes (UUIDs, device and mapper
// names): none occur in a real one. Mount points and labels may hold
// anything but NUL: the stand-in scripts quote every value (shellQuote).
const unsafeChars = " \t\n'\"\\$`;()|&<>*?[]{}#~"

// shellQuote quotes s for a POSIX shell: a literal word however it is
// spelled.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (f Filesystem) mountPoint() string {
	if f.MountPoint == "" {
		return "/"
	}
	return f.MountPoint
}

func (f Filesystem) check() error {
	if f.UUID == "" || strings.ContainsAny(f.UUID, unsafeChars) {
		return fmt.Errorf("grub: filesystem UUID %q is empty or not a UUID", f.UUID)
	}
	mp := f.mountPoint()
	if !path.IsAbs(mp) || path.Clean(mp) != mp || strings.ContainsRune(mp+f.Label, 0) {
		return fmt.Errorf("grub: mount point %q: want a clean absolute path", mp)
	}
	if f.Table != "msdos" && f.Table != "gpt" {
		return fmt.Errorf("grub: partition table %q: want msdos or gpt", f.Table)
	}
	if f.Partition < 1 || f.Partition > 128 {
		return fmt.Errorf("grub: partition number %d out of range", f.Partition)
	}
	if strings.ContainsAny(f.PartUUID+f.Device+f.Type, unsafeChars) {
		return fmt.Errorf("grub: PARTUUID %q, device %q or type %q holds blanks, quotes or shell characters", f.PartUUID, f.Device, f.Type)
	}
	for _, l := range f.Layers {
		if err := l.check(); err != nil {
			return err
		}
	}
	return nil
}

func (l Layer) check() error {
	switch l.Kind {
	case LayerLVM:
		if len(l.VGUUID) != 38 || len(l.LVUUID) != 38 {
			return fmt.Errorf("grub: LV %s: VG and LV UUIDs %q, %q are not LVM's 38-character ids", l.Name, l.VGUUID, l.LVUUID)
		}
	case LayerLUKS:
		if l.UUID == "" {
			return fmt.Errorf("grub: LUKS device %s has no UUID", l.Name)
		}
	default:
		return fmt.Errorf("grub: unknown layer kind %q", l.Kind)
	}
	if l.Name == "" || strings.ContainsAny(l.Name+l.VGUUID+l.LVUUID+l.UUID, unsafeChars+"/") {
		return fmt.Errorf("grub: device-mapper name %q or its ids hold blanks, slashes, quotes or shell characters", l.Name)
	}
	return nil
}

// grubPart is GRUB's name of the bottom partition: "msdos1", "gpt3".
func (f Filesystem) grubPart() string { return fmt.Sprintf("%s%d", f.Table, f.Partition) }

// device is what grub-probe --target=device answers for the filesystem.
func (f Filesystem) device() string {
	switch {
	case f.Device != "":
		return f.Device
	case len(f.Layers) > 0:
		return "/dev/mapper/" + f.Layers[0].Name
	}
	return "/dev/disk/by-uuid/" + f.UUID
}

// deviceNames are every name of the filesystem's device that the stand-in
// answers `--device NAME` for.
func (f Filesystem) deviceNames() []string {
	names := []string{f.device(), "/dev/disk/by-uuid/" + f.UUID}
	if len(f.Layers) > 0 {
		names = append(names, "/dev/mapper/"+f.Layers[0].Name)
	} else if f.PartUUID != "" {
		names = append(names, "/dev/disk/by-partuuid/"+f.PartUUID)
	}
	return dedup(names)
}

// drive is GRUB's name of the device holding the filesystem, as
// grub-probe --target=drive prints it without the parentheses: the
// partition (hd0,msdos2), an LV by its ids (lvmid/VGUUID/LVUUID, which
// grub-probe derives from the device-mapper UUID), a LUKS container by
// its UUID without dashes (cryptouuid/…).
func (f Filesystem) drive() string {
	if len(f.Layers) == 0 {
		return "hd0," + f.grubPart()
	}
	switch l := f.Layers[0]; l.Kind {
	case LayerLVM:
		return "lvmid/" + l.VGUUID + "/" + l.LVUUID
	default:
		return "cryptouuid/" + strings.ReplaceAll(l.UUID, "-", "")
	}
}

// abstraction is grub-probe --target=abstraction's answer, one module a
// line: the layers from the partition up, as grub-probe walks the stack
// (members first). For LUKS, grub-probe adds the cipher and hash modules
// of the container; they are left out here (GRUB never unlocks a
// container in these images: /boot must not be on LUKS).
func (f Filesystem) abstraction() []string {
	var out []string
	for i := len(f.Layers) - 1; i >= 0; i-- {
		switch f.Layers[i].Kind {
		case LayerLVM:
			out = append(out, "lvm")
		case LayerLUKS:
			out = append(out, "cryptodisk", "luks2")
		}
	}
	return out
}

// cryptodiskUUIDs are the UUIDs of the LUKS containers of the stack, from
// the partition up, without dashes, as GRUB 2.06's luks2 module keeps
// them (and `cryptomount -u` takes them).
func (f Filesystem) cryptodiskUUIDs() []string {
	var out []string
	for i := len(f.Layers) - 1; i >= 0; i-- {
		if l := f.Layers[i]; l.Kind == LayerLUKS {
			out = append(out, strings.ReplaceAll(l.UUID, "-", ""))
		}
	}
	return out
}

// encrypted reports whether a LUKS container is in the stack.
func (f Filesystem) encrypted() bool { return len(f.cryptodiskUUIDs()) > 0 }

// modules are the GRUB modules that read the filesystem: its stack's
// abstraction modules and the filesystem's.
func (f Filesystem) modules() []string {
	fs, _ := grubFS(f.Type)
	return append(f.abstraction(), fs)
}

func (l Layout) check() error {
	roots := 0
	seen := map[string]bool{}
	for _, f := range l {
		if err := f.check(); err != nil {
			return err
		}
		mp := f.mountPoint()
		if seen[mp] {
			return fmt.Errorf("grub: two filesystems at %s", mp)
		}
		seen[mp] = true
		if mp == "/" {
			roots++
		}
	}
	if roots != 1 {
		return fmt.Errorf("grub: no filesystem is mounted at / (or several are)")
	}
	return nil
}

// holder returns the filesystem whose mount point is the longest prefix
// of p (an absolute path resolved in the target), and p relative to that
// filesystem's root.
func (l Layout) holder(p string) (Filesystem, string) {
	best, rel := -1, p
	for i, f := range l {
		mp := f.mountPoint()
		if r, ok := under(p, mp); ok && (best < 0 || len(mp) > len(l[best].mountPoint())) {
			best, rel = i, r
		}
	}
	if best < 0 {
		return Filesystem{}, p
	}
	return l[best], rel
}

// under reports whether p is mp or inside it, and p relative to mp.
func under(p, mp string) (string, bool) {
	switch {
	case mp == "/":
		return p, true
	case p == mp:
		return "/", true
	case strings.HasPrefix(p, mp+"/"):
		return strings.TrimPrefix(p, mp), true
	}
	return "", false
}

// Boot returns the filesystem that holds /boot/grub, and /boot/grub's path
// in it ("/boot/grub" on the root filesystem, "/grub" on a separate
// /boot). GRUB must read it before it can read anything else, so its
// filesystem type must be one GRUB reads and it must not be encrypted
// (that needs GRUB_ENABLE_CRYPTODISK and a passphrase typed to GRUB).
func (l Layout) Boot() (Filesystem, string, error) {
	if err := l.check(); err != nil {
		return Filesystem{}, "", err
	}
	f, rel := l.holder("/boot/grub")
	if _, err := grubFS(f.Type); err != nil {
		return Filesystem{}, "", fmt.Errorf("%w; /boot/grub is on it (mounted at %s)", err, f.mountPoint())
	}
	if f.encrypted() {
		return Filesystem{}, "", fmt.Errorf("grub: /boot/grub is on an encrypted filesystem (mounted at %s); GRUB would have to unlock it before it reads its configuration: put /boot on a plain partition (or an LV not on LUKS)", f.mountPoint())
	}
	return f, rel, nil
}

// byMountDepth returns the filesystems' indexes, longest mount point
// first (so that the first prefix match is the longest).
func (l Layout) byMountDepth() []int {
	idx := make([]int, len(l))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return len(l[idx[a]].mountPoint()) > len(l[idx[b]].mountPoint()) })
	return idx
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
