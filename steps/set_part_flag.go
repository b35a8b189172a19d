package steps

import (
	"fmt"

	"github.com/vmdb2-go/vmdb2/partition"
)

// setPartFlagKind sets or clears a partition flag like
// `parted -s DEV set N FLAG on|off`. N is the tagged partition's own number
// (vmdb2 uses the tag's position in the tag list, which differs when a tag
// is not a partition or partitions are untagged).
var setPartFlagKind = &Kind{
	Name:        "set_part_flag",
	Summary:     "set or clear a partition flag",
	Implemented: true,
	Check:       checkPartFlag,
	Keys: []Key{
		{Name: "set_part_flag", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Required: true},
		{Name: "flag", Type: TStr, Required: true},
		{Name: "state", Type: TStr, Default: "enabled"},
	},
	Run: func(b *Build, s *Step) error {
		path, err := b.imagePath(s.Str("set_part_flag"))
		if err != nil {
			return err
		}
		tag, err := b.State.Tags.Get(s.Str("tag"))
		if err != nil {
			return err
		}
		if tag.PartNumber == 0 {
			return fmt.Errorf("tag %s is not a partition", tag.Name)
		}
		d, err := partition.Open(path)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := d.SetFlag(tag.PartNumber, s.Str("flag"), s.Str("state") == "enabled"); err != nil {
			return err
		}
		return d.Close()
	},
}
