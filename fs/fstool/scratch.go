package fstool

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Options are the settings shared by the builders that go through a
// scratch file (btrfs, xfs, f2fs, squashfs, swap).
type Options struct {
	// Label is the volume label (vmdb2's `label`); empty: none.
	Label string
	// UUID is the filesystem UUID, from the build seed; zero: the tool
	// picks one at random (not reproducible).
	UUID [16]byte
	// ExtraArgs are the spec's `options`, already split; empty strings
	// are dropped.
	ExtraArgs []string
	// Time is SOURCE_DATE_EPOCH; zero: none.
	Time time.Time
	// TempDir is where the scratch file is made (default os.TempDir()).
	// The runner's user must be able to reach it: the scratch directory is
	// made mode 0711 and the file 0666.
	TempDir string
}

// NonEmpty returns args without empty strings (vmdb2 splits `options` on
// single spaces, so double spaces give empty arguments).
func NonEmpty(args []string) []string {
	var out []string
	for _, a := range args {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Env returns SOURCE_DATE_EPOCH=t for a non-zero t.
func (o Options) Env() []string {
	if o.Time.IsZero() {
		return nil
	}
	return []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(o.Time.Unix(), 10)}
}

// FormatUUID formats u in the usual 8-4-4-4-12 form.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// TooSmallError says that a tree does not fit in its region.
type TooSmallError struct {
	Type       string
	Need, Have int64 // bytes; Need is 0 when unknown
	Err        error
}

func (e *TooSmallError) Error() string {
	need := "more room"
	if e.Need > 0 {
		need = fmt.Sprintf("%.1f MiB", float64(e.Need)/(1<<20))
	}
	msg := fmt.Sprintf("the files do not fit: the %s filesystem needs %s but the partition has %.1f MiB; make the partition bigger",
		e.Type, need, float64(e.Have)/(1<<20))
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

func (e *TooSmallError) Unwrap() error { return e.Err }

// ViaScratch builds a filesystem of the region [offset, offset+size) of
// image in a scratch file and then copies it in with CopyRegion. fill gets
// the scratch file's path: a sparse file of exactly size bytes when
// presize is set, else an empty file (for tools that write their own
// output, such as mksquashfs). After any failure the region is zeroed, so
// that no half-written filesystem is left behind. The scratch directory is
// always removed. The image is not fsynced (the caller does it once).
func ViaScratch(image string, offset, size int64, tmpDir string, presize bool, fill func(scratch string) error) (err error) {
	if err := CheckRegion(image, offset, size); err != nil {
		return err
	}
	img, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer img.Close()
	defer func() {
		if err != nil && !ZeroRegionFast(img, offset, size) {
			_ = ZeroRegion(img, offset, min(size, 1<<20))
		}
	}()
	dir, err := os.MkdirTemp(tmpDir, "vmdb2-fs-")
	if err != nil {
		return fmt.Errorf("making a scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	scratch := filepath.Join(dir, "fs.img")
	f, err := os.OpenFile(scratch, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	if presize {
		err = f.Truncate(size)
	}
	if err == nil {
		err = f.Chmod(0o666)
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("making the scratch file: %w", err)
	}
	if err := fill(scratch); err != nil {
		return err
	}
	f, err = os.Open(scratch)
	if err != nil {
		return fmt.Errorf("opening the built filesystem: %w", err)
	}
	defer f.Close()
	return CopyRegion(img, offset, size, f)
}
