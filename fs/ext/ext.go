// Package ext builds an ext2, ext3 or ext4 filesystem from a directory tree
// straight into a region of an image file with `mke2fs -d SRC -E offset=`,
// giving the size explicitly so that nothing outside the region is written,
// and then makes the result reproducible by rewriting the inode times that
// e2fsprogs 1.47.0 copies from the tree.
//
// Reproducibility. With the same tree contents, Options (UUID, HashSeed,
// Time) and e2fsprogs version and configuration (/etc/mke2fs.conf), two
// builds give identical bytes:
//   - the filesystem's own times (mkfs, write and check time, crtime,
//     lost+found, root directory) come from E2FSPROGS_FAKE_TIME, and
//     SOURCE_DATE_EPOCH is also set for e2fsprogs >= 1.47.2, which honours it;
//   - mke2fs 1.47.0 copies atime and ctime of every file from the tree; after
//     mke2fs, Build rewrites every used inode in place (see normalise.go):
//     atime, ctime and crtime become Options.Time, mtime is clamped to it
//     (like SOURCE_DATE_EPOCH in 1.47.2), and the inode checksum is
//     recomputed. This costs one pass over the used inodes' tables.
//   - entries are added in name order (mke2fs sorts), so the host's
//     readdir order does not matter.
//
// What still differs between builds: anything that differs in the tree
// (contents, modes, owners, xattrs, mtimes older than Options.Time), a
// different e2fsprogs version or mke2fs.conf (features, sizes and layout
// defaults change between releases), and everything when Options.Time is
// zero (then the build's own clock is used and nothing is rewritten).
//
// A tree too big for the region makes mke2fs fail with "Could not allocate
// block/inode"; Build then measures the tree and returns a *TooSmallError
// with an estimate of the size needed. After any failure the region is
// zeroed (or at least its first MiB, on devices that cannot discard) so that
// no half-written filesystem is left that blkid or mount would accept.
package ext

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Runner runs mke2fs; see fstool.Runner.
type Runner = fstool.Runner

// Options are the per-filesystem settings of a build.
type Options struct {
	// Type is "ext2", "ext3" or "ext4".
	Type string
	// Label is the volume label (mke2fs -L, vmdb2's `label`); empty: none.
	Label string
	// UUID is the filesystem UUID (mke2fs -U), chosen by the caller from
	// the build seed. It must not be all zeros.
	UUID [16]byte
	// HashSeed seeds the directory-index hash (mke2fs -E hash_seed=);
	// all zeros means "use UUID".
	HashSeed [16]byte
	// ExtraArgs are the spec's `options`, already split. Empty strings
	// (from double spaces) are dropped; -E values are merged with the ones
	// Build needs (mke2fs would otherwise keep only the last -E).
	ExtraArgs []string
	// Time is SOURCE_DATE_EPOCH: the filesystem's times and every inode's
	// atime/ctime/crtime, and the upper bound of mtimes. Zero: the
	// current time is used and the result is not reproducible.
	Time time.Time
}

// TooSmallError says that the tree does not fit in the region.
type TooSmallError struct {
	Type string
	// Need is an estimate of the region size (bytes) the tree needs, from
	// measuring it (see Estimate); Have is the region's size.
	Need, Have int64
	// Files and Data describe the tree: inodes and bytes allocated.
	Files int64
	Data  int64
	Err   error // what mke2fs said
}

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("%s filesystem: the files do not fit: they need about %s but the partition has %s (%d files, %s of data); make the partition bigger (%v)",
		e.Type, mib(e.Need), mib(e.Have), e.Files, mib(e.Data), e.Err)
}

func (e *TooSmallError) Unwrap() error { return e.Err }

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Args returns the mke2fs command line Build runs (without environment).
// zeroed says that the region already reads as zeros (a hole punched in a
// fresh image file, a zero-range request to a device): mke2fs is then told
// not to write the journal's zero blocks (lazy_journal_init), which leaves
// the same bytes and keeps a large image sparse. mke2fs's own discard stays
// on: on a regular file it is what lets mke2fs skip the inode tables and
// mark them zeroed, and without it the group descriptors' flags differ.
func Args(image string, offset, size int64, srcDir string, opts Options, zeroed bool) ([]string, error) {
	if err := checkArgs(size, opts); err != nil {
		return nil, err
	}
	seed := opts.HashSeed
	if seed == ([16]byte{}) {
		seed = opts.UUID
	}
	ext := []string{
		"offset=" + strconv.FormatInt(offset, 10),
		"root_owner=0:0",
		"hash_seed=" + FormatUUID(seed),
	}
	if zeroed {
		ext = append(ext, "lazy_journal_init=1")
	}
	args := []string{"mke2fs", "-F", "-q", "-t", opts.Type}
	if opts.Label != "" {
		args = append(args, "-L", opts.Label)
	}
	args = append(args, "-U", FormatUUID(opts.UUID))
	if opts.Type == "ext4" {
		// vmdb2's Debian patch (#1031364): images must stay readable by
		// older GRUB and e2fsprogs.
		args = append(args, "-O", "^large_dir", "-O", "^metadata_csum_seed")
	}
	args, ext, err := addExtraArgs(args, ext, opts.ExtraArgs)
	if err != nil {
		return nil, err
	}
	args = append(args, "-E", strings.Join(ext, ","), "-d", srcDir, image,
		strconv.FormatInt(size/1024, 10)+"k")
	return args, nil
}

// checkArgs refuses what Args cannot make a command line of.
func checkArgs(size int64, opts Options) error {
	switch opts.Type {
	case "ext2", "ext3", "ext4":
	default:
		return fmt.Errorf("ext: unsupported filesystem type %q (want ext2, ext3 or ext4)", opts.Type)
	}
	if opts.UUID == ([16]byte{}) {
		return errors.New("ext: no filesystem UUID given (the caller derives it from the build seed)")
	}
	if size < 1024 {
		return fmt.Errorf("ext: region of %d bytes is too small for a filesystem", size)
	}
	return nil
}

// addExtraArgs adds the spec's mke2fs options: -E values join the
// extended options (ext), the rest go on the command line; -d and an
// offset of the spec's own are refused.
func addExtraArgs(args, ext, extra []string) ([]string, []string, error) {
	for i := 0; i < len(extra); i++ {
		a := extra[i]
		var val string
		switch {
		case a == "":
			continue
		case a == "-E":
			if i+1 >= len(extra) {
				return nil, nil, errors.New("ext: options: -E needs a value")
			}
			i++
			val = extra[i]
		case strings.HasPrefix(a, "-E"):
			val = a[2:]
		case strings.HasPrefix(a, "-d"):
			return nil, nil, fmt.Errorf("ext: options: %s is not allowed: the filesystem is populated from the staging tree", a)
		default:
			args = append(args, a)
			continue
		}
		for _, kv := range strings.Split(val, ",") {
			if strings.HasPrefix(kv, "offset=") {
				return nil, nil, fmt.Errorf("ext: options: -E %s is not allowed: the offset is the partition's", kv)
			}
			if kv != "" {
				ext = append(ext, kv)
			}
		}
	}
	return args, ext, nil
}

// Env returns the environment Build adds for mke2fs and its helpers.
func Env(opts Options) []string {
	if opts.Time.IsZero() {
		return nil
	}
	t := strconv.FormatInt(opts.Time.Unix(), 10)
	return []string{"E2FSPROGS_FAKE_TIME=" + t, "SOURCE_DATE_EPOCH=" + t}
}

// Build makes an opts.Type filesystem of size bytes (rounded down to whole
// blocks; the remainder of the region is zeroed) at byte offset of image,
// holding the tree srcDir, by running mke2fs with run (nil: fstool.Exec).
// The image must already extend past offset+size; bytes outside the region
// are never written. Build does not fsync the image: the caller syncs it
// once when the whole image is done.
func Build(ctx context.Context, run Runner, image string, offset, size int64, srcDir string, opts Options) error {
	if err := fstool.CheckRegion(image, offset, size); err != nil {
		return fmt.Errorf("ext: %w", err)
	}
	if st, err := os.Stat(srcDir); err != nil {
		return fmt.Errorf("ext: source tree: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("ext: source tree %s is not a directory", srcDir)
	}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("ext: %w", err)
	}
	defer f.Close()
	// Start from zeros where that is cheap, so that blocks mke2fs does not
	// write read as zeros whether or not its own discard worked.
	zeroed := fstool.ZeroRegionFast(f, offset, size)
	args, err := Args(image, offset, size, srcDir, opts, zeroed)
	if err == nil {
		err = build(ctx, run, f, args, offset, size, srcDir, opts)
	}
	if err != nil {
		if !fstool.ZeroRegionFast(f, offset, size) {
			_ = fstool.ZeroRegion(f, offset, min(size, 1<<20))
		}
		return err
	}
	return nil
}

func build(ctx context.Context, run Runner, f *os.File, args []string, offset, size int64, srcDir string, opts Options) error {
	if _, err := fstool.Run(ctx, run, args, Env(opts)); err != nil {
		var te *fstool.ToolError
		if errors.As(err, &te) && ctx.Err() == nil &&
			(strings.Contains(te.Stderr, "Could not allocate") || strings.Contains(te.Stderr, "No space left") ||
				strings.Contains(te.Stderr, "too small")) {
			est, merr := Estimate(srcDir, opts.Type, size)
			if merr == nil && est.Need > size {
				return &TooSmallError{Type: opts.Type, Need: est.Need, Have: size, Files: est.Files, Data: est.Data, Err: err}
			}
		}
		return fmt.Errorf("ext: building %s filesystem: %w", opts.Type, err)
	}
	sb, err := readSuper(f, offset)
	if err != nil {
		return fmt.Errorf("ext: reading back the new filesystem: %w", err)
	}
	if used := sb.blocksCount * uint64(sb.blockSize); int64(used) < size {
		if err := fstool.ZeroRegion(f, offset+int64(used), size-int64(used)); err != nil {
			return fmt.Errorf("ext: %w", err)
		}
	}
	if !opts.Time.IsZero() {
		if err := normalise(f, offset, sb, opts.Time.Unix()); err != nil {
			return fmt.Errorf("ext: normalising inode times: %w", err)
		}
	}
	return nil
}

// FormatUUID formats u the way mke2fs -U and blkid do.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ReadUUID returns the UUID of the ext filesystem at offset of image (what
// vmdb2 asks blkid for after mkfs; it differs from Options.UUID only when
// the spec's options carry their own -U).
func ReadUUID(image string, offset int64) ([16]byte, error) {
	f, err := os.Open(image)
	if err != nil {
		return [16]byte{}, fmt.Errorf("ext: %w", err)
	}
	defer f.Close()
	sb, err := readSuper(f, offset)
	if err != nil {
		return [16]byte{}, fmt.Errorf("ext: %s at offset %d: %w", image, offset, err)
	}
	return sb.uuid, nil
}

// KnownFeatures returns those of features (names, without ^) that this
// host's mke2fs knows, asking it with a dry run (-n) that turns each off on
// a scratch file in tmp: a feature newer than the host's e2fsprogs is left
// out rather than failing the build.
func KnownFeatures(ctx context.Context, run Runner, tmp string, features []string) ([]string, error) {
	f, err := os.CreateTemp(tmp, "mke2fs-probe-*.img")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	err = f.Truncate(8 << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	var known []string
	for _, feat := range features {
		if _, err := fstool.Run(ctx, run, []string{"mke2fs", "-F", "-n", "-q", "-t", "ext4", "-O", "^" + feat, f.Name()}, nil); err == nil {
			known = append(known, feat)
		}
	}
	return known, nil
}
