package fs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/btrfs"
	"github.com/vmdb2-go/vmdb2/fs/ext"
	"github.com/vmdb2-go/vmdb2/fs/f2fs"
	"github.com/vmdb2-go/vmdb2/fs/fat"
	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/fs/squashfs"
	"github.com/vmdb2-go/vmdb2/fs/swap"
	"github.com/vmdb2-go/vmdb2/fs/xfs"
)

// Spec says which filesystem to build, where, and from what.
type Spec struct {
	Type   string // one of Types()
	Image  string // image file or block device
	Offset int64  // byte offset of the partition in Image
	Size   int64  // bytes of the partition
	SrcDir string // the tree to put in it (an empty directory for an empty filesystem)

	Label string
	// Options is the spec's `options` value, split on single spaces like
	// vmdb2 does (empty arguments from double spaces are dropped).
	Options  string
	UUID     [16]byte // all types but vfat
	HashSeed [16]byte // ext
	VolumeID uint32   // vfat
	Time     time.Time

	// Run runs the external tools (mke2fs, mkfs.btrfs, ...): the build
	// runs them inside its user namespace so owners in the tree come out
	// as the target sees them.
	Run fstool.Runner
	// TempDir is where scratch images go for types built beside the image.
	TempDir string
	// Devices are device nodes to add that the tree could not hold (built
	// as an ordinary user); only ext filesystems can take them.
	Devices []ext.Device
}

// Build builds the filesystem of spec into its region of the image.
func Build(ctx context.Context, spec Spec) error {
	if err := Supported(spec.Type); err != nil {
		return err
	}
	if len(spec.Devices) > 0 && !strings.HasPrefix(spec.Type, "ext") {
		return fmt.Errorf("the tree has device nodes (%s, …) that an ordinary user cannot create; only ext2/3/4 filesystems can receive them afterwards: build as root, or use ext4", spec.Devices[0].Path)
	}
	args := fstool.NonEmpty(strings.Split(spec.Options, " "))
	opts := fstool.Options{Label: spec.Label, UUID: spec.UUID, ExtraArgs: args, Time: spec.Time, TempDir: spec.TempDir}
	switch spec.Type {
	case "ext2", "ext3", "ext4":
		err := ext.Build(ctx, spec.Run, spec.Image, spec.Offset, spec.Size, spec.SrcDir, ext.Options{
			Type: spec.Type, Label: spec.Label, UUID: spec.UUID, HashSeed: spec.HashSeed, ExtraArgs: args, Time: spec.Time,
		})
		if err != nil {
			return err
		}
		skipped, err := ext.AddDevices(ctx, spec.Run, spec.Image, spec.Offset, spec.Devices, spec.Time)
		if err != nil {
			return err
		}
		if len(skipped) > 0 {
			return fmt.Errorf("device node %s: its directory is not in the filesystem", skipped[0].Path)
		}
		return nil
	case "vfat":
		fo, err := fat.ParseMkfsOptions(fat.Options{Label: spec.Label, VolumeID: spec.VolumeID, Time: spec.Time}, args)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(spec.Image, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("opening the image: %w", err)
		}
		defer f.Close()
		if err := fat.Build(f, spec.Offset, spec.Size, spec.SrcDir, fo); err != nil {
			return err
		}
		return f.Close()
	case "btrfs":
		return btrfs.Build(ctx, spec.Run, spec.Image, spec.Offset, spec.Size, spec.SrcDir, opts)
	case "xfs":
		return xfs.Build(ctx, spec.Run, spec.Image, spec.Offset, spec.Size, spec.SrcDir, opts)
	case "f2fs":
		return f2fs.Build(ctx, spec.Run, spec.Image, spec.Offset, spec.Size, spec.SrcDir, opts)
	case "squashfs":
		return squashfs.Build(ctx, spec.Run, spec.Image, spec.Offset, spec.Size, spec.SrcDir, opts)
	case "swap":
		return swap.Build(ctx, spec.Run, spec.Image, spec.Offset, spec.Size, opts)
	}
	return fmt.Errorf("no builder for %q", spec.Type)
}

// UUIDText is the filesystem's identifier as blkid reports it and as
// /etc/fstab's UUID= wants it: XXXX-XXXX for vfat, a UUID otherwise.
func UUIDText(fsType string, uuid [16]byte, volumeID uint32) string {
	if fsType == "vfat" {
		return fmt.Sprintf("%04X-%04X", volumeID>>16, volumeID&0xffff)
	}
	return fstool.FormatUUID(uuid)
}
