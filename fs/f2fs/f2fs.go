// Package f2fs builds an f2fs filesystem of exactly a given size with
// mkfs.f2fs in a sparse scratch file, fills it from a directory tree with
// `sload.f2fs -f DIR -P` (owners preserved) and copies it, sparsely, into a
// region of an image file.
//
// With Options.Time set, both tools get -T (their timestamp) and mkfs.f2fs
// gets -r (fixed checkpoint seed); reproducibility is not tested, and the
// superblock records the running kernel's version string, so it differs
// between hosts. sload.f2fs 1.15 keeps hard links (checked: one inode,
// two links) but silently skips fifos, sockets and device nodes.
package f2fs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Options are label, UUID, time, the spec's extra mkfs.f2fs arguments and
// the scratch directory.
type Options = fstool.Options

// Args returns the mkfs.f2fs and sload.f2fs command lines.
func Args(srcDir, scratch string, opts Options) (mkfs, sload []string) {
	mkfs = []string{"mkfs.f2fs", "-f", "-q", "-t", "0"}
	sload = []string{"sload.f2fs", "-f", srcDir, "-t", "/", "-P"}
	if opts.Label != "" {
		mkfs = append(mkfs, "-l", opts.Label)
	}
	if opts.UUID != ([16]byte{}) {
		mkfs = append(mkfs, "-U", fstool.FormatUUID(opts.UUID))
	}
	if !opts.Time.IsZero() {
		t := strconv.FormatInt(opts.Time.Unix(), 10)
		mkfs = append(mkfs, "-r", "-T", t)
		sload = append(sload, "-T", t)
	}
	mkfs = append(mkfs, fstool.NonEmpty(opts.ExtraArgs)...)
	return append(mkfs, scratch), append(sload, scratch)
}

// Build makes and fills the filesystem with run (nil: fstool.Exec) and
// copies it into [offset, offset+size) of image.
func Build(ctx context.Context, run fstool.Runner, image string, offset, size int64, srcDir string, opts Options) error {
	if st, err := os.Stat(srcDir); err != nil || !st.IsDir() {
		return fmt.Errorf("f2fs: source tree %s is not a directory (%v)", srcDir, err)
	}
	err := fstool.ViaScratch(image, offset, size, opts.TempDir, true, func(scratch string) error {
		mkfs, sload := Args(srcDir, scratch, opts)
		if _, err := fstool.Run(ctx, run, mkfs, opts.Env()); err != nil {
			return err
		}
		_, err := fstool.Run(ctx, run, sload, opts.Env())
		if te, ok := err.(*fstool.ToolError); ok && (strings.Contains(te.Stderr, "No space") ||
			strings.Contains(strings.ToLower(te.Stderr), "no free") || strings.Contains(te.Stderr, "ENOSPC")) {
			return &fstool.TooSmallError{Type: "f2fs", Have: size, Err: err}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("f2fs: %w", err)
	}
	return nil
}
