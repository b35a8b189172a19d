package lvm

import (
	"fmt"
	"io"
	"os"
)

// Place is where one range of an LV's data lies once its PVs are placed
// in files: a file (an image or a scratch file) and a byte range of it.
type Place struct {
	Path         string
	Offset, Size int64
}

// Gather copies the places, in order, into the file at path from its
// start: an LV spanning several PVs read into one file.
func Gather(path string, places []Place) error {
	var at int64
	for _, p := range places {
		src, err := os.Open(p.Path)
		if err != nil {
			return err
		}
		err = copyAt(path, at, io.NewSectionReader(src, p.Offset, p.Size))
		src.Close()
		if err != nil {
			return fmt.Errorf("reading %s at %d: %w", p.Path, p.Offset, err)
		}
		at += p.Size
	}
	return nil
}

// Scatter copies the file at path, in order, onto the places: one file
// written back to the segments of an LV spanning several PVs.
func Scatter(path string, places []Place) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	var at int64
	for _, p := range places {
		if err := copyAt(p.Path, p.Offset, io.NewSectionReader(src, at, p.Size)); err != nil {
			return fmt.Errorf("writing %s at %d: %w", p.Path, p.Offset, err)
		}
		at += p.Size
	}
	return nil
}

// copyAt writes r to the file at off, leaving holes where r's blocks are
// all zero and the file's are too (a new image stays sparse).
func copyAt(path string, off int64, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	buf, old := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := writeUnlessZero(f, buf[:n], old[:n], off); err != nil {
				f.Close()
				return err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return f.Close()
		}
		if rerr != nil {
			f.Close()
			return rerr
		}
	}
}

func writeUnlessZero(f *os.File, p, old []byte, off int64) error {
	if allZero(p) {
		if n, err := f.ReadAt(old, off); (err == nil || err == io.EOF) && allZero(old[:n]) {
			return nil
		}
	}
	_, err := f.WriteAt(p, off)
	return err
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}
