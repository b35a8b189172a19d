package steps

import (
	"fmt"
	"path/filepath"

	"github.com/vmdb2-go/vmdb2/partition"
)

// mkimgKind creates the image file: a sparse file of the given size (what
// vmdb2 does with `qemu-img create -f raw`).
var mkimgKind = &Kind{
	Name:        "mkimg",
	Summary:     "create the image file",
	Implemented: true,
	Check: func(s *Step, report reportFunc) {
		n, err := partition.ParseImageSize(s.Str("size"))
		if err == nil {
			err = partition.CheckImageSize(s.Str("size"), n)
		}
		if err != nil {
			report(s.KeyLine("size"), Error, "mkimg: %v", err)
		}
	},
	Keys: []Key{
		{Name: "mkimg", Type: TStr, Required: true},
		{Name: "size", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		path, err := b.imagePath(s.Str("mkimg"))
		if err != nil {
			return err
		}
		size, err := partition.ParseImageSize(s.Str("size"))
		if err == nil {
			err = partition.CheckImageSize(s.Str("size"), size)
		}
		if err != nil {
			return err
		}
		b.Detail("creating %s of %d bytes", path, size)
		return partition.CreateImage(path, size)
	},
}

// imagePath checks that a disk step writes the image the command line
// named (--output or --image), so that a spec cannot overwrite arbitrary
// host files.
func (b *Build) imagePath(p string) (string, error) {
	if err := checkImagePath(p, b.Settings.Output, b.Settings.Image); err != nil {
		return "", err
	}
	return p, nil
}

// checkImagePath is the rule of imagePath, shared with the preflight.
func checkImagePath(p, output, image string) error {
	for _, allowed := range []string{output, image} {
		if allowed != "" && filepath.Clean(p) == filepath.Clean(allowed) {
			return nil
		}
	}
	return fmt.Errorf("%q is not the image given with --output or --image (%s); disk steps only write that file",
		p, firstNonEmpty(output, image, "none given"))
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
