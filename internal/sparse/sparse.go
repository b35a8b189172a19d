// Package sparse finds where a sparse file holds data, as the kernel's
// lseek SEEK_DATA and SEEK_HOLE tell: the one place the image's copy,
// compare and export code asks. A hole reads as zeros, so code that walks
// only the data extents sees every byte that may differ from zero. Where
// the filesystem cannot tell (lseek answers EINVAL or EOPNOTSUPP), the
// whole range is data; block devices therefore are read in full.
package sparse

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// The lseek whences of sparse files (Linux); package syscall does not
// name them.
const (
	seekData = 3
	seekHole = 4
)

// Extent is a byte range [Off, Off+Len) of a file that may hold data.
type Extent struct{ Off, Len int64 }

// End is the offset just past the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// Extents returns the data extents of f within [from, to), in order, each
// clipped to the range. It does not move f's offset in a way callers rely
// on (ReadAt and WriteAt ignore it).
func Extents(f *os.File, from, to int64) ([]Extent, error) {
	var es []Extent
	for pos := from; pos < to; {
		data, err := f.Seek(pos, seekData)
		switch {
		case errors.Is(err, syscall.ENXIO):
			return es, nil // only a hole remains
		case errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP):
			return append(es, Extent{pos, to - pos}), nil
		case err != nil:
			return nil, fmt.Errorf("finding the data of %s: %w", f.Name(), err)
		}
		if data >= to {
			return es, nil
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil || hole > to {
			hole = to
		}
		if hole <= data {
			return es, nil
		}
		es = append(es, Extent{data, hole - data})
		pos = hole
	}
	return es, nil
}

// IsHole reports whether [off, off+n) of f holds no data; false when the
// filesystem cannot tell.
func IsHole(f *os.File, off, n int64) bool {
	data, err := f.Seek(off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		return true // only a hole remains after off
	}
	return err == nil && data >= off+n
}

// Union merges two ordered extent lists into one ordered list of the
// bytes either covers, overlapping and adjacent extents joined.
func Union(a, b []Extent) []Extent {
	var out []Extent
	add := func(e Extent) {
		if n := len(out); n > 0 && e.Off <= out[n-1].End() {
			out[n-1].Len = max(out[n-1].End(), e.End()) - out[n-1].Off
			return
		}
		out = append(out, e)
	}
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || (len(a) > 0 && a[0].Off <= b[0].Off) {
			add(a[0])
			a = a[1:]
		} else {
			add(b[0])
			b = b[1:]
		}
	}
	return out
}
