// Package btrfs builds a btrfs filesystem of exactly a given size from a
// directory tree with `mkfs.btrfs --rootdir` in a sparse scratch file and
// copies it, sparsely, into a region of an image file.
//
// Not reproducible with btrfs-progs 6.2: besides the filesystem UUID
// (Options.UUID) mkfs.btrfs draws random device and chunk-tree UUIDs and
// stamps the current time on the trees it creates; SOURCE_DATE_EPOCH is not
// honoured. Owners, modes, symlinks, hard links, devices, fifos and xattrs
// are copied from the tree.
package btrfs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Options are label, UUID, the spec's extra mkfs.btrfs arguments and the
// scratch directory.
type Options = fstool.Options

// Args returns the mkfs.btrfs command line for the scratch file.
func Args(srcDir, scratch string, size int64, opts Options) []string {
	args := []string{"mkfs.btrfs", "-f", "-q"}
	if opts.Label != "" {
		args = append(args, "-L", opts.Label)
	}
	if opts.UUID != ([16]byte{}) {
		args = append(args, "-U", fstool.FormatUUID(opts.UUID))
	}
	args = append(args, fstool.NonEmpty(opts.ExtraArgs)...)
	return append(args, "-b", strconv.FormatInt(size, 10), "--rootdir", srcDir, scratch)
}

// Build makes the filesystem with run (nil: fstool.Exec) and copies it into
// [offset, offset+size) of image. A tree that does not fit gives a
// *fstool.TooSmallError.
func Build(ctx context.Context, run fstool.Runner, image string, offset, size int64, srcDir string, opts Options) error {
	if st, err := os.Stat(srcDir); err != nil || !st.IsDir() {
		return fmt.Errorf("btrfs: source tree %s is not a directory (%v)", srcDir, err)
	}
	err := fstool.ViaScratch(image, offset, size, opts.TempDir, true, func(scratch string) error {
		_, err := fstool.Run(ctx, run, Args(srcDir, scratch, size, opts), opts.Env())
		if te, ok := err.(*fstool.ToolError); ok && (strings.Contains(te.Stderr, "No space left") ||
			strings.Contains(te.Stderr, "too small") || strings.Contains(te.Stderr, "ENOSPC")) {
			return &fstool.TooSmallError{Type: "btrfs", Have: size, Err: err}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("btrfs: %w", err)
	}
	return nil
}
