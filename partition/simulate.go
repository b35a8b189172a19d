package partition

import (
	"fmt"
	"io"
	"os"
)

// Simulate returns a disk of size bytes that lives in memory and starts out
// zero: what `mkimg` would create. Every Disk method works on it as on a
// file, with the same geometry, checks and errors, and nothing is written
// anywhere, so a planner can try a spec's partitioning before it runs.
// name is used in messages.
func Simulate(name string, size int64) (*Disk, error) {
	d := &Disk{f: &overlay{size: size}, path: name, sectorSize: 512, heads: 4, sectorsPerTrack: 32}
	if err := d.setSize(size); err != nil {
		return nil, err
	}
	return d, nil
}

// SimulateOn opens an existing image file or block device read-only and
// returns a disk that reads what it holds but keeps every change in memory:
// the file is never written. It has the geometry Open would give.
func SimulateOn(path string) (*Disk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open disk: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open disk %s: size: %w", path, err)
	}
	d := &Disk{f: &overlay{base: f, size: size}, path: path, sectorSize: 512, heads: 4, sectorsPerTrack: 32}
	if err := d.init(f); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// overlayChunk is the granularity of an overlay's copy-on-write blocks.
const overlayChunk = 64 << 10

// overlay is a sparse in-memory device of size bytes over an optional
// read-only base: written chunks are kept in memory, the rest reads from
// base (or as zeros). Partition tables touch a few sectors at each end, so
// even a huge simulated disk costs a few chunks.
type overlay struct {
	base   *os.File // nil: zeros
	size   int64
	chunks map[int64][]byte
}

func (o *overlay) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > o.size {
		return 0, io.EOF
	}
	for done := 0; done < len(b); {
		pos := off + int64(done)
		idx, in := pos/overlayChunk, pos%overlayChunk
		n := min(len(b)-done, int(overlayChunk-in))
		switch c, ok := o.chunks[idx]; {
		case ok:
			copy(b[done:done+n], c[in:])
		case o.base != nil:
			if _, err := o.base.ReadAt(b[done:done+n], pos); err != nil {
				return done, err
			}
		default:
			clear(b[done : done+n])
		}
		done += n
	}
	return len(b), nil
}

func (o *overlay) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > o.size {
		return 0, fmt.Errorf("write beyond the end of the simulated disk (%d bytes)", o.size)
	}
	if o.chunks == nil {
		o.chunks = map[int64][]byte{}
	}
	for done := 0; done < len(b); {
		pos := off + int64(done)
		idx, in := pos/overlayChunk, pos%overlayChunk
		c, ok := o.chunks[idx]
		if !ok {
			c = make([]byte, min(overlayChunk, o.size-idx*overlayChunk))
			if o.base != nil {
				if _, err := o.base.ReadAt(c, idx*overlayChunk); err != nil && err != io.EOF {
					return done, err
				}
			}
			o.chunks[idx] = c
		}
		done += copy(c[in:], b[done:])
	}
	return len(b), nil
}

func (o *overlay) Sync() error { return nil }

func (o *overlay) Close() error {
	o.chunks = nil
	if o.base != nil {
		return o.base.Close()
	}
	return nil
}
