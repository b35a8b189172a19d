package luks

import (
	"crypto/aes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/xts"
)

// XTSCipher is the cipher this package encrypts with.
const XTSCipher = "aes-xts-plain64"

// chunkSize is how much cleartext one worker encrypts at a time; with
// workers chunks in flight, memory stays at workers × chunkSize.
const chunkSize = 1 << 20

// workers is how many chunks are encrypted at once.
const workers = 2

// Encrypt writes the container into dst at dstOffset: the header, then the
// first DataSize(size) bytes of src encrypted. It returns a digest of the
// cleartext (SHA-256 over each chunk's SHA-256), which is what two builds
// of the same payload share when their ciphertexts differ.
func (c *Container) Encrypt(src io.ReaderAt, dst io.WriterAt, dstOffset, size int64) ([]byte, error) {
	if err := c.writeHeader(dst, dstOffset); err != nil {
		return nil, err
	}
	dataSize := c.DataSize(size)
	chunks := (dataSize + chunkSize - 1) / chunkSize
	sums := make([][sha256.Size]byte, chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = c.encryptChunks(src, dst, dstOffset+c.DataOffset, dataSize, &next, sums)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, s := range sums {
		h.Write(s[:])
	}
	return h.Sum(nil), nil
}

// encryptChunks encrypts chunks, taking the next one from next, until none
// are left.
func (c *Container) encryptChunks(src io.ReaderAt, dst io.WriterAt, at, dataSize int64, next *atomic.Int64, sums [][sha256.Size]byte) error {
	x, err := xts.NewCipher(aes.NewCipher, c.volumeKey)
	if err != nil {
		return fmt.Errorf("the volume key: %w", err)
	}
	buf := make([]byte, chunkSize)
	ss := c.SectorSize
	for {
		i := next.Add(1) - 1
		off := i * chunkSize
		if off >= dataSize {
			return nil
		}
		n := int(min(chunkSize, dataSize-off))
		b := buf[:n]
		got, err := src.ReadAt(b, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the cleartext at %d: %w", off, err)
		}
		clear(b[got:]) // past the cleartext's end: zeros, as a sparse file reads
		sums[i] = sha256.Sum256(b)
		// plain64: the IV is the sector's number in the data area, counted
		// in 512-byte units whatever the sector size.
		sector := uint64(off / 512)
		for j := 0; j < n; j += ss {
			x.Encrypt(b[j:j+ss], b[j:j+ss], sector)
			sector += uint64(ss / 512)
		}
		if _, err := dst.WriteAt(b, at+off); err != nil {
			return fmt.Errorf("writing the ciphertext: %w", err)
		}
	}
}

// writeHeader copies the header file's first DataOffset bytes to dst.
func (c *Container) writeHeader(dst io.WriterAt, at int64) error {
	f, err := os.Open(c.HeaderFile)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(io.NewOffsetWriter(dst, at), io.NewSectionReader(f, 0, c.DataOffset)); err != nil {
		return fmt.Errorf("writing the LUKS2 header: %w", err)
	}
	return nil
}
