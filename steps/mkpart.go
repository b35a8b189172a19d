package steps

import (
	"github.com/vmdb2-go/vmdb2/partition"
)

// mkpartKind adds a partition with GNU parted's geometry and records its
// byte range under its tag (what vmdb2 needs kpartx for).
var mkpartKind = &Kind{
	Name:        "mkpart",
	Summary:     "add a partition",
	Implemented: true,
	Keys: []Key{
		{Name: "mkpart", Type: TStr, Required: true},
		{Name: "device", Type: TStr, Required: true},
		{Name: "start", Type: TStr, Required: true},
		{Name: "end", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Default: ""},
		{Name: "part-tag", Type: TStr, Default: ""},
		{Name: "fs-type", Type: TStr, Default: "ext2"},
	},
	Run: func(b *Build, s *Step) error {
		path, err := b.imagePath(s.Str("device"))
		if err != nil {
			return err
		}
		name := firstNonEmpty(s.Str("tag"), s.Str("part-tag"))
		if name != "" {
			if _, err := b.State.Tags.Get(name); err == nil {
				return b.State.Tags.addErr(name)
			}
		}
		d, err := partition.Open(path)
		if err != nil {
			return err
		}
		defer d.Close()
		p, err := d.MakePart(s.Str("mkpart"), s.Str("fs-type"), s.Str("start"), s.Str("end"))
		if err != nil {
			return err
		}
		if err := d.Close(); err != nil {
			return err
		}
		b.Detail("partition %d: sectors %d-%d (%d bytes)", p.Number, p.StartSector, p.EndSector(), p.Size)
		if name == "" {
			// vmdb2 would create an unusable tag "None"; an untagged
			// partition simply has no name here.
			return nil
		}
		tag, err := b.State.Tags.Add(name)
		if err != nil {
			return err
		}
		tag.Image, tag.PartNumber, tag.Offset, tag.Size = path, p.Number, p.Offset, p.Size
		return nil
	},
}
