package steps

import (
	"fmt"

	"github.com/vmdb2-go/vmdb2/fs"
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
	},
	Keys: []Key{
		{Name: "mkfs", Type: TStr, Required: true},
		{Name: "partition", Type: TStr, Required: true},
		{Name: "label", Type: TStr, Default: ""},
		{Name: "options", Type: TStr, Default: ""},
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
		// Never mounted: an empty filesystem, as mkfs would leave it.
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

// buildFilesystem writes tag's filesystem from dir into its partition.
func (b *Build) buildFilesystem(tag *Tag, dir string) error {
	b.Progress("Building %s filesystem of %s (%s) from %s", tag.FSType, tag.Name, sizeText(tag.Size), dir)
	st, err := b.Stage()
	if err != nil {
		return err
	}
	err = fs.Build(b.ctx, fs.Spec{
		Type: tag.FSType, Image: tag.Image, Offset: tag.Offset, Size: tag.Size, SrcDir: dir,
		Label: tag.Label, Options: tag.Options, UUID: tag.UUID, HashSeed: tag.HashSeed, VolumeID: tag.VolumeID,
		Time: b.Settings.SourceDateEpoch, Run: b.ToolRunner(), TempDir: st.MetaPath(""),
	})
	if err != nil {
		return fmt.Errorf("building the %s filesystem of tag %s: %w", tag.FSType, tag.Name, err)
	}
	tag.Built = true
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
