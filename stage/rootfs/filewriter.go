package rootfs

import (
	"archive/tar"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

// fileWriter writes the data and metadata of regular files on a goroutine
// of its own, so that writing one member into the tree overlaps with
// decompressing and parsing the next ones. The extractor creates each file
// itself (names are resolved in member order) and hands over its
// descriptor; the writer only writes to descriptors, so the order of
// writes between files does not change the tree.
type fileWriter struct {
	jobs chan writeJob
	free chan []byte // buffers to read data into, at most writerBuffers
	done chan struct{}

	mu  sync.Mutex
	err error // the first failure
}

// writeJob is a piece of one file's data; the file's last job (last set)
// also sets its metadata from h (when the data was complete) and closes fd.
type writeJob struct {
	fd   int
	data []byte // a buffer from free, or nil
	last bool
	h    *tar.Header // nil on the last job: close only
	name string
}

const (
	writerBuffers = 8
	writerBufSize = 1 << 20
)

func newFileWriter() *fileWriter {
	w := &fileWriter{jobs: make(chan writeJob, writerBuffers), free: make(chan []byte, writerBuffers), done: make(chan struct{})}
	for range writerBuffers {
		w.free <- make([]byte, writerBufSize)
	}
	go w.run()
	return w
}

func (w *fileWriter) run() {
	defer close(w.done)
	for j := range w.jobs {
		if len(j.data) > 0 && w.Err() == nil {
			if err := writeAll(j.fd, j.data); err != nil {
				w.fail(fmt.Errorf("member %q: writing data: %w", j.name, err))
			}
		}
		if j.data != nil {
			w.free <- j.data[:cap(j.data)]
		}
		if !j.last {
			continue
		}
		var err error
		if j.h != nil && w.Err() == nil {
			err = fileMetadata(j.fd, j.h)
		}
		if cerr := unix.Close(j.fd); err == nil {
			err = cerr
		}
		if err != nil {
			w.fail(fmt.Errorf("member %q: %w", j.name, err))
		}
	}
}

func (w *fileWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// Err is the first failure so far.
func (w *fileWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Wait waits until everything handed over is written (and every
// descriptor closed) and returns the first failure. It may be called more
// than once.
func (w *fileWriter) Wait() error {
	select {
	case <-w.done:
	default:
		close(w.jobs)
		<-w.done
	}
	return w.Err()
}

// file hands over fd, just created for the member h, with its data read
// from r. It returns only a failure to read; the writer's own failures
// (naming their member) come from Err and Wait.
func (w *fileWriter) file(fd int, h *tar.Header, r io.Reader) error {
	size := h.Size
	for size > 0 {
		buf := <-w.free
		n := min(size, int64(len(buf)))
		m, err := io.ReadFull(r, buf[:n])
		if err != nil {
			w.free <- buf
			w.jobs <- writeJob{fd: fd, last: true, name: h.Name}
			return damaged("reading data", err)
		}
		size -= int64(m)
		w.jobs <- writeJob{fd: fd, data: buf[:m], last: size == 0, h: h, name: h.Name}
	}
	if h.Size <= 0 {
		w.jobs <- writeJob{fd: fd, last: true, h: h, name: h.Name}
	}
	return nil
}

// fileMetadata sets the owner, mode, xattrs and times of a regular file
// whose data is written (the mode after the owner: chown clears setuid).
func fileMetadata(fd int, h *tar.Header) error {
	if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, uint32(h.Mode)&0o7777); err != nil {
		return err
	}
	if err := setXattrs(h, func(name string, val []byte) error { return unix.Fsetxattr(fd, name, val, 0) }); err != nil {
		return err
	}
	return unix.UtimesNanoAt(fd, "", times(h.ModTime), unix.AT_EMPTY_PATH)
}

// writeAll writes b to fd.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
