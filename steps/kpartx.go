package steps

import "fmt"

// kpartxKind is kept for compatibility: vmdb2 maps the image's partitions
// to devices here; this program reaches partitions by their byte range,
// which mkpart already recorded, so the step only checks that the image is
// the one the partitions were made on.
var kpartxKind = &Kind{
	Name:        "kpartx",
	Summary:     "make the image's partitions usable by tag (nothing to map here)",
	Implemented: true,
	Keys: []Key{
		{Name: "kpartx", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		path, err := b.imagePath(s.Str("kpartx"))
		if err != nil {
			return err
		}
		for _, tag := range b.State.Tags.All() {
			if tag.Image != "" && tag.Image != path {
				return fmt.Errorf("tag %s is a partition of %s, not of %s", tag.Name, tag.Image, path)
			}
			if tag.PartNumber > 0 {
				b.Detail("partition %d (bytes %d+%d) is tag %s", tag.PartNumber, tag.Offset, tag.Size, tag.Name)
			}
		}
		return nil
	},
}
