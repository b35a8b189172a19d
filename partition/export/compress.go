package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/vmdb2-go/vmdb2/internal/sparse"
)

// chunkSize is the size of the pieces the image is cut into. Each piece is
// compressed on its own into a complete stream (a gzip member, an xz
// stream, a zstd frame); the streams, concatenated in order, are one file
// that gzip -d, xz -d and zstd -d read whole. So the pieces compress in
// parallel, and the output depends on this size only, never on the number
// of threads. A piece that is all zeros (most of a sparse image) gives the
// same stream every time: it is compressed once per export.
var chunkSize = 16 << 20

// chunkCompressor compresses one piece into a complete stream appended to
// dst.
type chunkCompressor func(dst *bytes.Buffer, piece []byte) error

func gzipChunk(dst *bytes.Buffer, piece []byte) error {
	// No name, no time (MTIME 0), OS "unknown": the header is fixed.
	// klauspost's deflate is about twice as fast as compress/flate's at
	// the same level, and is already this program's gzip for tarballs.
	w, err := gzip.NewWriterLevel(dst, 6)
	if err != nil {
		return err
	}
	if _, err := w.Write(piece); err != nil {
		return err
	}
	return w.Close()
}

// zstdEncoder is shared: EncodeAll may be called concurrently.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
})

func zstdChunk(dst *bytes.Buffer, piece []byte) error {
	enc, err := zstdEncoder()
	if err != nil {
		return err
	}
	dst.Write(enc.EncodeAll(piece, nil))
	return nil
}

func xzChunk(dst *bytes.Buffer, piece []byte) error {
	// xz's preset 6 dictionary; CRC64 as xz writes by default.
	w, err := xz.WriterConfig{DictCap: 8 << 20, CheckSum: xz.CRC64}.NewWriter(dst)
	if err != nil {
		return err
	}
	if _, err := w.Write(piece); err != nil {
		return err
	}
	return w.Close()
}

// compressed is the write function of a compressed raw image.
func compressed(c chunkCompressor) func(context.Context, *job) error {
	return func(ctx context.Context, j *job) error {
		return compressPieces(ctx, j, c, max(1, runtime.NumCPU()))
	}
}

// piece is one chunk of the image on its way through the workers.
type piece struct {
	off, n int64
	hole   bool // entirely in a hole of the image: not read, known zeros
	out    chan result
}

type result struct {
	data []byte
	err  error
}

// compressPieces reads the image in order, compresses its pieces on
// workers goroutines and writes the streams in order.
func compressPieces(ctx context.Context, j *job, c chunkCompressor, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	zeros := &zeroStream{compress: c}
	todo := make(chan *piece)
	order := make(chan *piece, workers)
	go func() {
		defer close(todo)
		defer close(order)
		for off := int64(0); off < j.size; off += int64(chunkSize) {
			p := &piece{off: off, n: min(int64(chunkSize), j.size-off), out: make(chan result, 1)}
			p.hole = sparse.IsHole(j.image, p.off, p.n)
			select {
			case order <- p:
			case <-ctx.Done():
				return
			}
			select {
			case todo <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range todo {
				data, err := compressPiece(j, p, c, zeros)
				p.out <- result{data, err}
			}
		})
	}
	err := writeInOrder(ctx, j.tmp, order)
	cancel()
	for range todo { // let the workers see the end
	}
	wg.Wait()
	return err
}

// writeInOrder writes each piece's stream as it comes, in the image's
// order.
func writeInOrder(ctx context.Context, w io.Writer, order <-chan *piece) error {
	for p := range order {
		var r result
		select {
		case r = <-p.out:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return fmt.Errorf("at byte %d of the image: %w", p.off, r.err)
		}
		if _, err := w.Write(r.data); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func compressPiece(j *job, p *piece, c chunkCompressor, zeros *zeroStream) ([]byte, error) {
	if p.hole && p.n == int64(chunkSize) {
		return zeros.get()
	}
	buf := make([]byte, p.n)
	if !p.hole {
		if _, err := j.image.ReadAt(buf, p.off); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if p.n == int64(chunkSize) && allZero(buf) {
			return zeros.get()
		}
	}
	var out bytes.Buffer
	if err := c(&out, buf); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// zeroStream is the stream of a full piece of zeros, made once.
type zeroStream struct {
	compress chunkCompressor
	once     sync.Once
	data     []byte
	err      error
}

func (z *zeroStream) get() ([]byte, error) {
	z.once.Do(func() {
		var out bytes.Buffer
		z.err = z.compress(&out, make([]byte, chunkSize))
		z.data = out.Bytes()
	})
	return z.data, z.err
}

// zeroBlock is compared with, a block at a time (bytes.Equal is vectorised).
var zeroBlock = make([]byte, 64<<10)

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
