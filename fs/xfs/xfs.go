// Package xfs makes an xfs filesystem of exactly a given size with mkfs.xfs
// in a sparse scratch file and copies it into a region of an image file.
//
// xfsprogs cannot populate a filesystem from a directory (its -p protofile
// loses hard links, xattrs, times and sparseness, and cannot name files
// with spaces), so only an empty tree is accepted: Build fails with an
// explanation when the tree holds anything. xfsprogs 6.1 refuses
// filesystems smaller than 300 MiB. Not reproducible: mkfs.xfs stamps
// the current time on the root inode.
package xfs

import (
	"context"
	"fmt"
	"os"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Options are label (at most 12 bytes), UUID, the spec's extra mkfs.xfs
// arguments and the scratch directory.
type Options = fstool.Options

// Args returns the mkfs.xfs command line for the scratch file.
func Args(scratch string, opts Options) []string {
	args := []string{"mkfs.xfs", "-f", "-q"}
	if opts.Label != "" {
		args = append(args, "-L", opts.Label)
	}
	if opts.UUID != ([16]byte{}) {
		args = append(args, "-m", "uuid="+fstool.FormatUUID(opts.UUID))
	}
	args = append(args, fstool.NonEmpty(opts.ExtraArgs)...)
	return append(args, scratch)
}

// Build makes an empty xfs filesystem in [offset, offset+size) of image with
// run (nil: fstool.Exec). srcDir must be empty (or ""): see the package
// documentation.
func Build(ctx context.Context, run fstool.Runner, image string, offset, size int64, srcDir string, opts Options) error {
	if srcDir != "" {
		ents, err := os.ReadDir(srcDir)
		if err != nil {
			return fmt.Errorf("xfs: source tree: %w", err)
		}
		if len(ents) > 0 {
			return fmt.Errorf("xfs: cannot put files into an xfs filesystem without mounting it (%s holds %s and more): "+
				"xfsprogs cannot populate xfs from a directory; use ext4, btrfs or f2fs for this partition, or leave it empty",
				srcDir, ents[0].Name())
		}
	}
	err := fstool.ViaScratch(image, offset, size, opts.TempDir, true, func(scratch string) error {
		_, err := fstool.Run(ctx, run, Args(scratch, opts), opts.Env())
		return err
	})
	if err != nil {
		return fmt.Errorf("xfs: %w", err)
	}
	return nil
}
