package fstool

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/vmdb2-go/vmdb2/internal/sparse"
)

// Linux fallocate(2) modes that package syscall does not name.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

// chunk is the unit in which regions are copied and scanned for zeros.
const chunk = 64 << 10

// CheckRegion verifies that [offset, offset+size) is a non-empty region that
// lies entirely inside the existing image (a regular file or a block
// device), so that a builder never grows the image or writes past its end.
func CheckRegion(image string, offset, size int64) error {
	if offset < 0 || size <= 0 {
		return fmt.Errorf("invalid region of %s: offset %d, size %d (both must be positive)", image, offset, size)
	}
	f, err := os.Open(image)
	if err != nil {
		return fmt.Errorf("opening image: %w", err)
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("finding the size of %s: %w", image, err)
	}
	if offset+size > end || offset+size < offset {
		return fmt.Errorf("region [%d, %d) lies beyond the end of %s (%d bytes): make the image larger or the partition smaller",
			offset, offset+size, image, end)
	}
	return nil
}

// ZeroRegion makes [off, off+n) of f read as zeros: it punches a hole
// (regular files, keeping them sparse), else asks for a zeroed range (block
// devices), else writes zeros.
func ZeroRegion(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	if zeroFast(f, off, n) {
		return nil
	}
	return writeZeros(f, off, n)
}

// ZeroRegionFast zeroes [off, off+n) of f only if that is cheap (punching
// a hole in a regular file, a zero-range request to a block device) and
// reports whether it did.
func ZeroRegionFast(f *os.File, off, n int64) bool { return zeroFast(f, off, n) }

// zeroFast zeroes a range with fallocate and reports whether it could.
func zeroFast(f *os.File, off, n int64) bool {
	fd := int(f.Fd())
	if syscall.Fallocate(fd, fallocPunchHole|fallocKeepSize, off, n) == nil {
		return true
	}
	return syscall.Fallocate(fd, fallocZeroRange|fallocKeepSize, off, n) == nil
}

func writeZeros(f *os.File, off, n int64) error {
	zero := make([]byte, chunk)
	for n > 0 {
		w := min(n, int64(len(zero)))
		if _, err := f.WriteAt(zero[:w], off); err != nil {
			return fmt.Errorf("zeroing %s: %w", f.Name(), err)
		}
		off += w
		n -= w
	}
	return nil
}

// CopyRegion writes the whole of src into dst at [off, off+size) and zeroes
// the rest of that region, so no old bytes survive. src must not be longer
// than size. The copy is sparse-aware: when the region could be zeroed
// cheaply (punch hole), holes of src (SEEK_HOLE) and all-zero chunks are
// skipped, so a mostly empty filesystem stays mostly unallocated in the
// image. Bytes outside the region are never written.
func CopyRegion(dst *os.File, off, size int64, src *os.File) error {
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("copying into image: %w", err)
	}
	n := st.Size()
	if n > size {
		return fmt.Errorf("built filesystem is %d bytes, larger than its region of %d bytes", n, size)
	}
	if !zeroFast(dst, off, size) {
		// Dense copy: every byte of the region is written.
		if err := copyRange(dst, off, src, 0, n, false); err != nil {
			return err
		}
		return writeZeros(dst, off+n, size-n)
	}
	es, err := sparse.Extents(src, 0, n)
	if err != nil {
		return fmt.Errorf("copying into image: %w", err)
	}
	for _, e := range es {
		if err := copyRange(dst, off, src, e.Off, e.Len, true); err != nil {
			return err
		}
	}
	return nil
}

// copyRange copies src[from, from+n) to dst at off+from, skipping all-zero
// chunks when skipZero is set (the destination already reads as zeros).
func copyRange(dst *os.File, off int64, src *os.File, from, n int64, skipZero bool) error {
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	for n > 0 {
		w := min(n, int64(len(buf)))
		r, err := src.ReadAt(buf[:w], from)
		if int64(r) != w {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading %s: %w", src.Name(), err)
		}
		if !skipZero || !bytes.Equal(buf[:w], zero[:w]) {
			if _, err := dst.WriteAt(buf[:w], off+from); err != nil {
				return fmt.Errorf("writing %s: %w", dst.Name(), err)
			}
		}
		from += w
		n -= w
	}
	return nil
}
