package steps

import (
	"fmt"

	"github.com/vmdb2-go/vmdb2/partition"
)

// kpartxKind: vmdb2 maps the image's partitions to devices here; this
// program reaches partitions by their byte range, which mkpart already
// recorded, so without `tags` the step only checks that the image is the
// one the partitions were made on. With `tags` (vmdb2 0.28+), the image
// given with --image already has a partition table (from an earlier
// build): partitions 1..n, in the table's order, become the tags listed,
// and a later `mount` of one without `mkfs` imports its filesystem (see
// reuse.go).
var kpartxKind = &Kind{
	Name:        "kpartx",
	Summary:     "make the image's partitions usable by tag (`tags`: name those of an existing image)",
	Implemented: true,
	Keys: []Key{
		{Name: "kpartx", Type: TStr, Required: true},
		{Name: "tags", Type: TList, Default: []string{}},
	},
	Run: func(b *Build, s *Step) error {
		path, err := b.imagePath(s.Str("kpartx"))
		if err != nil {
			return err
		}
		if names := s.Strings("tags"); len(names) > 0 {
			return b.kpartxTags(path, names)
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

// kpartxTags names the partitions of the existing image at path.
func (b *Build) kpartxTags(path string, names []string) error {
	if err := kpartxImage(path, b.Settings.Image); err != nil {
		return err
	}
	d, err := partition.SimulateOn(path)
	if err != nil {
		return fmt.Errorf("reading the partition table of %s: %w", path, err)
	}
	defer d.Close()
	if err := addPartitionTags(&b.State.Tags, path, d.Partitions(), names); err != nil {
		return err
	}
	for _, name := range names {
		tag, _ := b.State.Tags.Get(name)
		b.Detail("partition %d (bytes %d+%d) of %s is tag %s", tag.PartNumber, tag.Offset, tag.Size, path, tag.Name)
	}
	return nil
}

// kpartxImage is the rule for `kpartx` with `tags`: the partitions named
// are those of an existing image, the one given with --image.
func kpartxImage(path, image string) error {
	if image == "" || checkImagePath(path, "", image) != nil {
		return fmt.Errorf("kpartx with tags names the partitions of an existing image: %s must be the image given with --image (%s)", path, firstNonEmpty(image, "none given"))
	}
	return nil
}

// addPartitionTags makes tags names[i] of partition i+1 of the table,
// marked as holding what an earlier build made.
func addPartitionTags(tags *Tags, path string, parts []partition.Partition, names []string) error {
	if len(parts) == 0 {
		return fmt.Errorf("%s has no partition table, or no partitions in it (a `kpartx` with tags reuses an image an earlier build partitioned)", path)
	}
	if len(names) > len(parts) {
		return fmt.Errorf("%d tags for the %d partitions of %s: list at most one tag per partition, in the table's order", len(names), len(parts), path)
	}
	for i, name := range names {
		tag, err := tags.Add(name)
		if err != nil {
			return err
		}
		p := parts[i]
		tag.Image, tag.PartNumber, tag.Offset, tag.Size, tag.Reused = path, p.Number, p.Offset, p.Size, true
	}
	return nil
}
