// Package squashfs builds a squashfs image of a directory tree with
// mksquashfs and copies it into a region of an image file; the region must
// be at least as big as the compressed image, and its rest is zeroed.
//
// With Options.Time set, SOURCE_DATE_EPOCH makes mksquashfs 4.5 set the
// filesystem time and clamp file times, and its output is identical across
// builds of the same tree. squashfs has neither label nor UUID, so a label
// is an error and the UUID is ignored (blkid reports none: such a
// filesystem cannot be listed in fstab by UUID).
package squashfs

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Options are the extra mksquashfs arguments (e.g. "-comp xz"), the time and
// the scratch directory; Label must be empty and UUID is ignored.
type Options = fstool.Options

// Args returns the mksquashfs command line writing scratch from srcDir.
func Args(srcDir, scratch string, opts Options) []string {
	args := []string{"mksquashfs", srcDir, scratch, "-noappend", "-quiet", "-no-progress"}
	return append(args, fstool.NonEmpty(opts.ExtraArgs)...)
}

// Build runs mksquashfs on srcDir (with run; nil: fstool.Exec) and copies the
// result into [offset, offset+size) of image. A result larger than the
// region gives a *fstool.TooSmallError with the exact size needed.
func Build(ctx context.Context, run fstool.Runner, image string, offset, size int64, srcDir string, opts Options) error {
	if opts.Label != "" {
		return errors.New("squashfs: a squashfs filesystem has no label: remove the label")
	}
	if st, err := os.Stat(srcDir); err != nil || !st.IsDir() {
		return fmt.Errorf("squashfs: source tree %s is not a directory (%v)", srcDir, err)
	}
	err := fstool.ViaScratch(image, offset, size, opts.TempDir, false, func(scratch string) error {
		if _, err := fstool.Run(ctx, run, Args(srcDir, scratch, opts), opts.Env()); err != nil {
			return err
		}
		st, err := os.Stat(scratch)
		if err != nil {
			return err
		}
		if st.Size() > size {
			return &fstool.TooSmallError{Type: "squashfs", Need: st.Size(), Have: size}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	return nil
}
