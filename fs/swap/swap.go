// Package swap writes a Linux swap area (mkswap) of exactly a given size at
// a byte offset of an image file. A swap area has no content; vmdb2 could
// not make one (its mkfs step runs `mkfs -t swap`, which does not exist).
package swap

import (
	"context"
	"fmt"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Options are label, UUID, extra mkswap arguments and scratch directory;
// Time is not used (a swap header holds no time).
type Options = fstool.Options

// Args returns the mkswap command line for the scratch file.
func Args(scratch string, opts Options) []string {
	args := []string{"mkswap", "-q"}
	if opts.Label != "" {
		args = append(args, "-L", opts.Label)
	}
	if opts.UUID != ([16]byte{}) {
		args = append(args, "-U", fstool.FormatUUID(opts.UUID))
	}
	args = append(args, fstool.NonEmpty(opts.ExtraArgs)...)
	return append(args, scratch)
}

// Build writes a swap area over [offset, offset+size) of image with mkswap
// run by run (nil: fstool.Exec), through a sparse scratch file (mkswap
// cannot write at an offset); the rest of the region is zeroed.
func Build(ctx context.Context, run fstool.Runner, image string, offset, size int64, opts Options) error {
	if size < 40960 {
		return fmt.Errorf("swap: region of %d bytes is too small (at least 10 pages are needed)", size)
	}
	err := fstool.ViaScratch(image, offset, size, opts.TempDir, true, func(scratch string) error {
		_, err := fstool.Run(ctx, run, Args(scratch, opts), nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	return nil
}
