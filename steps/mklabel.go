package steps

import (
	"github.com/vmdb2-go/vmdb2/partition"
)

// mklabelKind writes an empty msdos or gpt partition table, as
// `parted -s DEV mklabel TYPE` would, with identifiers from the build seed.
var mklabelKind = &Kind{
	Name:        "mklabel",
	Summary:     "write an empty partition table (msdos or gpt)",
	Implemented: true,
	Check: func(s *Step, report reportFunc) {
		switch s.Str("mklabel") {
		case "msdos", "gpt":
		default:
			report(s.KeyLine("mklabel"), Error, "mklabel: unsupported partition table type %q; use msdos or gpt", s.Str("mklabel"))
		}
	},
	Keys: []Key{
		{Name: "mklabel", Type: TStr, Required: true},
		{Name: "device", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		path, err := b.imagePath(s.Str("device"))
		if err != nil {
			return err
		}
		d, err := partition.Open(path)
		if err != nil {
			return err
		}
		defer d.Close()
		ids := partition.LabelIDs{
			DiskGUID:     partition.GUID(b.IDs.UUID("gpt-disk-guid")),
			MBRSignature: b.IDs.Uint32("mbr-disk-signature"),
		}
		if err := d.MakeLabel(s.Str("mklabel"), ids); err != nil {
			return err
		}
		return d.Close()
	},
}
