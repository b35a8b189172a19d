package steps

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/fs"
	"github.com/vmdb2-go/vmdb2/fs/ext"
	"github.com/vmdb2-go/vmdb2/fs/fat"
	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/rootfs"
)

// mkfsKind chooses a partition's filesystem. Nothing is written yet: the
// filesystem is built from its staging directory when its mount is torn
// down (or empty, at this step's teardown, if it is never mounted), with a
// UUID known now so fstab and GRUB can use it.
var mkfsKind = &Kind{
	Name:        "mkfs",
	Summary:     "make a filesystem on a partition",
	Implemented: true,
	Check: func(s *Step, report reportFunc) {
		if err := fs.Supported(s.Str("mkfs")); err != nil {
			report(s.KeyLine("mkfs"), Error, "mkfs: %v", err)
		}
		if s.Bool("target_old") && !strings.HasPrefix(s.Str("mkfs"), "ext") {
			report(s.KeyLine("target_old"), Warning, "mkfs: target_old turns off ext2/3/4 features that old kernels and e2fsprogs cannot read; it does nothing for %s", s.Str("mkfs"))
		}
		if s.Str("mkfs") == "vfat" {
			// The FAT writer takes the mkfs.fat options it supports; the
			// others are known now.
			if _, err := fat.ParseMkfsOptions(fat.Options{}, fstool.NonEmpty(strings.Split(s.Str("options"), " "))); err != nil {
				report(s.KeyLine("options"), Error, "mkfs: %v", err)
			}
		}
	},
	Keys: []Key{
		{Name: "mkfs", Type: TStr, Required: true},
		{Name: "partition", Type: TStr, Required: true},
		{Name: "label", Type: TStr, Default: ""},
		{Name: "options", Type: TStr, Default: ""},
		{Name: "target_old", Type: TBool, Default: false},
	},
	Run: func(b *Build, s *Step) error {
		tag, err := b.State.Tags.Get(s.Str("partition"))
		if err != nil {
			return err
		}
		if tag.Size == 0 {
			return fmt.Errorf("tag %s has no partition to make a filesystem on", tag.Name)
		}
		if tag.FSType != "" {
			return fmt.Errorf("Already has filesystem type: %s", tag.Name)
		}
		tag.FSType = s.Str("mkfs")
		tag.Label = s.Str("label")
		tag.Options = s.Str("options")
		if s.Bool("target_old") && strings.HasPrefix(tag.FSType, "ext") {
			if err := b.targetOld(tag); err != nil {
				return err
			}
		}
		tag.UUID = b.IDs.UUID("fs-uuid:" + sanitize(tag.Name))
		tag.HashSeed = b.IDs.UUID("ext-hash-seed:" + sanitize(tag.Name))
		tag.VolumeID = b.IDs.Uint32("fat-volume-id:" + sanitize(tag.Name))
		tag.UUIDText = fs.UUIDText(tag.FSType, tag.UUID, tag.VolumeID)
		b.Detail("tag %s: %s filesystem, UUID %s", tag.Name, tag.FSType, tag.UUIDText)
		return nil
	},
	Teardown: func(b *Build, s *Step) error {
		tag, err := b.State.Tags.Get(s.Str("partition"))
		if err != nil || tag.FSType == "" || tag.Built || b.Failed() {
			return nil
		}
		// Never mounted: an empty filesystem, as mkfs would leave it, or
		// what the grub step put in an ESP it was not given mounted.
		if tag.hasTree() {
			dir, err := b.tagDir(tag)
			if err != nil {
				return err
			}
			return b.buildFilesystem(tag, dir)
		}
		st, err := b.Stage()
		if err != nil {
			return err
		}
		empty, err := st.NewFilesystemDir()
		if err != nil {
			return err
		}
		return b.buildFilesystem(tag, empty)
	},
}

// targetOldFeatures are the ext features Debian's vmdb2 0.41-1 turns off
// for `target_old` (bug #1108498): newer than what old target kernels and
// e2fsprogs (GRUB's too) read.
var targetOldFeatures = []string{"large_dir", "metadata_csum_seed", "orphan_file"}

// targetOld adds to tag's mkfs options the turning off of
// targetOldFeatures, those this host's mke2fs knows (one older than the
// feature cannot make it anyway).
func (b *Build) targetOld(tag *Tag) error {
	st, err := b.Stage()
	if err != nil {
		return err
	}
	known, err := ext.KnownFeatures(b.ctx, b.ToolRunner(), st.MetaPath(""), targetOldFeatures)
	if err != nil {
		return fmt.Errorf("target_old: asking mke2fs which features it knows: %w", err)
	}
	if len(known) < len(targetOldFeatures) {
		b.Detail("target_old: this mke2fs knows only %v of %v", known, targetOldFeatures)
	}
	if len(known) == 0 {
		return nil
	}
	tag.Options = strings.TrimSpace(tag.Options + " -O ^" + strings.Join(known, ",^"))
	b.Detail("tag %s: target_old: mke2fs options %s", tag.Name, tag.Options)
	return nil
}

// buildFilesystem writes tag's filesystem from dir into its partition.
func (b *Build) buildFilesystem(tag *Tag, dir string) error {
	b.Progress("Building %s filesystem of %s (%s) from %s", tag.FSType, tag.Name, sizeText(tag.Size), dir)
	st, err := b.Stage()
	if err != nil {
		return err
	}
	devices, err := b.devicesFor(tag)
	if err != nil {
		return err
	}
	// Once only: after a failure the mkfs teardown must not try again
	// (and report the same error a second time).
	tag.Built = true
	err = fs.Build(b.ctx, fs.Spec{
		Devices: devices,
		Type:    tag.FSType, Image: tag.Image, Offset: tag.Offset, Size: tag.Size, SrcDir: dir,
		Label: tag.Label, Options: tag.Options, UUID: tag.UUID, HashSeed: tag.HashSeed, VolumeID: tag.VolumeID,
		Time: b.Settings.SourceDateEpoch, Run: b.ToolRunner(), TempDir: st.MetaPath(""),
	})
	if err != nil {
		return fmt.Errorf("building the %s filesystem of tag %s: %w", tag.FSType, tag.Name, err)
	}
	return nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// devicesFor returns the device nodes recorded (by an unprivileged unpack or
// debootstrap) for tag's filesystem: those of the tree the tag's directory
// belongs to, below its mount point and not below a nested mount.
func (b *Build) devicesFor(tag *Tag) ([]ext.Device, error) {
	st, err := b.Stage()
	if err != nil {
		return nil, err
	}
	if tag.Name != b.devicesTag {
		return tag.imported, nil
	}
	recorded, err := rootfs.ReadManifest(st.MetaPath("devices.json"))
	if err != nil || len(recorded) == 0 {
		return tag.imported, err
	}
	// Nested trees by where they really are in this one (their mount
	// points resolved inside the image), not by the spec's dirname.
	var nested []string
	for _, other := range b.State.Tags.All() {
		if other != tag && other.Mounted && other.MountOn != "" {
			in, top, err := b.inTop(other)
			if err != nil {
				return nil, err
			}
			if top == tag {
				nested = append(nested, path.Clean(in))
			}
		}
	}
	var out []ext.Device
next:
	for _, d := range recorded {
		for _, n := range nested {
			if d.Path == n || strings.HasPrefix(d.Path, n+"/") {
				continue next
			}
		}
		mode, err := strconv.ParseUint(d.Mode, 8, 32)
		if err != nil {
			return nil, fmt.Errorf("device manifest: bad mode %q for %s", d.Mode, d.Path)
		}
		out = append(out, ext.Device{Path: d.Path, Block: d.Type == "b", Major: d.Major, Minor: d.Minor,
			Perm: stage.ModeFromUnix(int64(mode)), UID: d.UID, GID: d.GID, Mtime: time.Unix(d.Mtime, 0)})
	}
	return append(out, tag.imported...), nil
}
