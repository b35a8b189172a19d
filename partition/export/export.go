// Package export converts a finished raw disk image into the formats people
// deploy (qcow2, vmdk, vhdx, zstd/xz/gzip-compressed raw, bmaptool's block
// map), chosen by the target file's name from one table, and writes each
// target under a temporary name renamed into place only when it is complete.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Format is one export format.
type Format struct {
	// Suffix selects the format: the target's name ends with it.
	Suffix string
	// Summary says what the file is, for --help and messages.
	Summary string
	// Tool is the host program the format needs ("" for none), and Package
	// the Debian package that provides it.
	Tool, Package string
	// write fills tmp (an empty file, named as the target will be) from
	// the image.
	write func(ctx context.Context, j *job) error
}

// formats is the one table of export formats, matched by suffix.
var formats = []Format{
	{Suffix: ".qcow2", Summary: "QEMU copy-on-write v3 (qemu-img convert)", Tool: "qemu-img", Package: "qemu-utils", write: qemuConvert("qcow2")},
	{Suffix: ".vmdk", Summary: "VMware monolithic sparse disk (qemu-img convert)", Tool: "qemu-img", Package: "qemu-utils", write: qemuConvert("vmdk")},
	{Suffix: ".vhdx", Summary: "Hyper-V dynamic disk (qemu-img convert)", Tool: "qemu-img", Package: "qemu-utils", write: qemuConvert("vhdx")},
	{Suffix: ".img.zst", Summary: "raw image, zstd-compressed (level 3)", write: compressed(zstdChunk)},
	{Suffix: ".img.xz", Summary: "raw image, xz-compressed (LZMA2, 8 MiB dictionary)", write: compressed(xzChunk)},
	{Suffix: ".img.gz", Summary: "raw image, gzip-compressed (level 6)", write: compressed(gzipChunk)},
	{Suffix: ".bmap", Summary: "bmaptool block map (format 2.0, 4096-byte blocks, sha256 per range)", write: writeBmap},
}

// Formats returns the table, in the order --help lists it.
func Formats() []Format { return append([]Format(nil), formats...) }

// ForName returns the format a target's name selects.
func ForName(name string) (*Format, error) {
	for i := range formats {
		if strings.HasSuffix(name, formats[i].Suffix) && len(filepath.Base(name)) > len(formats[i].Suffix) {
			return &formats[i], nil
		}
	}
	var names []string
	for _, f := range formats {
		names = append(names, f.Suffix)
	}
	return nil, fmt.Errorf("cannot tell the format of %q from its name: it must end with one of %s", name, strings.Join(names, " "))
}

// Target is one export: where it goes and in which format.
type Target struct {
	Path   string
	Format *Format
}

// Options are what Write needs besides the image and the target.
type Options struct {
	// Run runs the host tools (qemu-img); nil runs them directly.
	Run fstool.Runner
	// ID derives the identifiers qemu-img would draw at random (a vmdk's
	// content id, a vhdx's GUIDs) from purpose, so that the exports of
	// one image are the same bytes; nil keeps qemu-img's.
	ID func(purpose string) [16]byte
}

// job is one export in progress.
type job struct {
	image *os.File
	size  int64
	tmp   *os.File // the file being written, in a private directory
	opts  Options
}

// Write exports the raw image at imagePath to t. The target appears only
// when complete: it is written inside a private directory beside it (under
// its own name, which vmdk descriptors record) and renamed into place, and
// on failure nothing is left.
func Write(ctx context.Context, imagePath string, t Target, opts Options) (err error) {
	img, err := os.Open(imagePath)
	if err != nil {
		return fmt.Errorf("exporting %s: %w", t.Path, err)
	}
	defer img.Close()
	size, err := img.Seek(0, io.SeekEnd) // a block device's Stat says 0
	if err != nil {
		return fmt.Errorf("exporting %s: %w", t.Path, err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(t.Path), ".vmdb2-export-")
	if err != nil {
		return fmt.Errorf("exporting %s: %w", t.Path, err)
	}
	defer os.RemoveAll(dir)
	tmpPath := filepath.Join(dir, filepath.Base(t.Path))
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return fmt.Errorf("exporting %s: %w", t.Path, err)
	}
	j := &job{image: img, size: size, tmp: tmp, opts: opts}
	err = t.Format.write(ctx, j)
	if err == nil {
		err = tmp.Sync() // complete on disk before it has its name
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = os.Rename(tmpPath, t.Path)
	}
	if err != nil {
		return fmt.Errorf("exporting %s (%s): %w", t.Path, strings.TrimPrefix(t.Format.Suffix, "."), err)
	}
	return nil
}

// Check refuses, before the build, targets that cannot be written: an
// unknown suffix, a name given twice or naming one of the build's other
// files (taken: path → which option gave it), a directory or other
// non-regular file, a directory that does not exist or cannot be written
// to, and a format whose host tool is missing.
func Check(paths []string, taken map[string]string) ([]Target, error) {
	seen := map[string]string{}
	for p, opt := range taken {
		if p != "" {
			seen[absolute(p)] = opt
		}
	}
	var targets []Target
	var errs []error
	for _, p := range paths {
		t, err := checkOne(p, seen)
		if err != nil {
			errs = append(errs, fmt.Errorf("--export %s: %w", p, err))
			continue
		}
		seen[absolute(p)] = "--export " + p
		targets = append(targets, t)
	}
	return targets, errors.Join(errs...)
}

func checkOne(p string, seen map[string]string) (Target, error) {
	f, err := ForName(p)
	if err != nil {
		return Target{}, err
	}
	if opt, dup := seen[absolute(p)]; dup {
		return Target{}, fmt.Errorf("the same file as %s; give each export its own name", opt)
	}
	if err := sameFileAsTaken(p, seen); err != nil {
		return Target{}, err
	}
	if fi, err := os.Stat(p); err == nil && !fi.Mode().IsRegular() {
		return Target{}, fmt.Errorf("exists and is not a regular file (%s); name a file to create or replace", fi.Mode().Type())
	}
	dir := filepath.Dir(p)
	if fi, err := os.Stat(dir); err != nil {
		return Target{}, fmt.Errorf("its directory %s: %w", dir, err)
	} else if !fi.IsDir() {
		return Target{}, fmt.Errorf("%s is not a directory", dir)
	}
	// The export is written in a directory made beside the target: try
	// that now (a read-only filesystem or missing rights show here).
	probe, err := os.MkdirTemp(dir, ".vmdb2-export-")
	if err != nil {
		return Target{}, fmt.Errorf("cannot create files in %s: %w", dir, err)
	}
	os.Remove(probe)
	if f.Tool != "" {
		if _, err := exec.LookPath(f.Tool); err != nil {
			return Target{}, fmt.Errorf("needs the program %s: install the Debian package %s (apt-get install %s)", f.Tool, f.Package, f.Package)
		}
	}
	return Target{Path: p, Format: f}, nil
}

// sameFileAsTaken catches a target that is another name (a link) of a file
// already taken.
func sameFileAsTaken(p string, seen map[string]string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return nil
	}
	for q, opt := range seen {
		if qi, err := os.Stat(q); err == nil && os.SameFile(fi, qi) {
			return fmt.Errorf("the same file as %s; give each export its own name", opt)
		}
	}
	return nil
}

func absolute(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}
