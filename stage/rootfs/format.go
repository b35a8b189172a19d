package rootfs

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Format is a tarball's compression.
type Format int

// The compressions Pack writes and Unpack reads.
const (
	Plain Format = iota // uncompressed tar
	Gzip
	Xz
	Zstd
	Bzip2
)

func (f Format) String() string {
	switch f {
	case Plain:
		return "tar"
	case Gzip:
		return "gzip"
	case Xz:
		return "xz"
	case Zstd:
		return "zstd"
	case Bzip2:
		return "bzip2"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// FormatFor returns the compression Pack uses for a tarball of this name,
// as GNU tar's -a chooses it: ".tar.gz", ".tgz", ".taz" gzip; ".tar.xz",
// ".txz" xz; ".tar.zst", ".tar.zstd", ".tzst" zstd; ".tar.bz2", ".tbz",
// ".tbz2", ".tz2" bzip2; anything else none.
func FormatFor(name string) Format {
	n := strings.ToLower(name)
	for _, s := range []struct {
		f   Format
		ext []string
	}{
		{Gzip, []string{".tar.gz", ".tgz", ".taz"}},
		{Xz, []string{".tar.xz", ".txz"}},
		{Zstd, []string{".tar.zst", ".tar.zstd", ".tzst"}},
		{Bzip2, []string{".tar.bz2", ".tbz", ".tbz2", ".tz2"}},
	} {
		for _, e := range s.ext {
			if strings.HasSuffix(n, e) {
				return s.f
			}
		}
	}
	return Plain
}

// Sniff returns the compression of data from its first bytes (magic
// numbers); anything unknown is taken for an uncompressed tar.
func Sniff(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return Xz
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case bytes.HasPrefix(head, []byte("BZh")):
		return Bzip2
	}
	return Plain
}

// hostXz is the xz program, or "" to use the (much slower) Go decoder and
// encoder. A variable so tests can compare both.
var hostXz = lookPath("xz")

// hostZstd is the zstd program, or "" to decode with the Go decoder. The
// decoded stream is the same either way; the program decodes on another
// core while this process creates the files, and its decoder is faster.
// Writing stays with the Go encoder, whose output does not depend on the
// host. A variable so tests can compare both.
var hostZstd = lookPath("zstd")

// hostBzip2 is the bzip2 program, or "" to decode with Go's decoder
// (writing .tar.bz2 needs the program). bzip2 ignores data after the last
// stream, with a warning, as GNU tar then does; Go's decoder refuses it.
var hostBzip2 = lookPath("bzip2")

// zstdDecodeArgs make the program accept the windows the Go decoder
// accepts (up to zstd.MaxWindowSize, 512 MiB); its own default stops at
// 128 MiB.
var zstdDecodeArgs = []string{"-dcq", "--memory=512MB"}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// xzArgs are the host xz settings: preset 6 (xz's default) in multi-threaded
// mode with a fixed block size. In that mode the output depends only on the
// block size, never on the number of threads, so it is reproducible from
// one machine to the next; and it decompresses in parallel.
// An explicit thread count of at least 2 keeps xz in multi-threaded mode
// even on one CPU and with xz versions older than 5.4 (there --threads=0 on
// one CPU, and --threads=1 anywhere, select the single-threaded mode, whose
// output differs).
func xzArgs() []string {
	return xzArgsThreads(max(2, runtime.NumCPU()))
}

// xzBlockSize is a variable so that tests can check determinism on small
// inputs.
var xzBlockSize = "16MiB"

func xzArgsThreads(n int) []string {
	return []string{"-6", "--threads=" + strconv.Itoa(n), "--block-size=" + xzBlockSize, "--no-adjust", "-c"}
}

// compressor returns a writer that compresses into w; closing it flushes
// the compressed stream (it does not close w).
func compressor(f Format, w io.Writer) (io.WriteCloser, error) {
	switch f {
	case Plain:
		return nopWriteCloser{w}, nil
	case Gzip:
		// Level 6 is gzip's default. klauspost's gzip is deterministic
		// at a fixed level and writes no name or time in its header.
		return gzip.NewWriterLevel(w, 6)
	case Zstd:
		// The encoder's output does not depend on its concurrency.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2),
			zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
	case Xz:
		if hostXz != "" {
			return pipeTo(hostXz, xzArgs(), w)
		}
		return xz.WriterConfig{DictCap: 8 << 20, CheckSum: xz.CRC64}.NewWriter(w)
	case Bzip2:
		if hostBzip2 == "" {
			return nil, errors.New("writing .tar.bz2 needs the bzip2 program (Debian package bzip2)")
		}
		return pipeTo(hostBzip2, []string{"-9", "-c"}, w)
	}
	return nil, fmt.Errorf("unknown format %v", f)
}

// decompressor returns a reader of the tar stream inside r, whose format it
// sniffs. Closing it releases what it holds (a decoder, a child process).
func decompressor(r io.Reader) (io.ReadCloser, Format, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(8)
	f := Sniff(head)
	switch f {
	case Gzip:
		z, err := newGzipMembers(br)
		return z, f, err
	case Zstd:
		if hostZstd != "" {
			rc, err := decodeWith(hostZstd, zstdDecodeArgs, br)
			return rc, f, err
		}
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, f, err
		}
		return z.IOReadCloser(), f, nil
	case Xz:
		if hostXz != "" {
			rc, err := decodeWith(hostXz, []string{"-dc", "--threads=0"}, br)
			return rc, f, err
		}
		z, err := xz.NewReader(br)
		if err != nil {
			return nil, f, err
		}
		return io.NopCloser(z), f, nil
	case Bzip2:
		if hostBzip2 != "" {
			rc, err := decodeWith(hostBzip2, []string{"-dc"}, br)
			return rc, f, err
		}
		return io.NopCloser(bzip2.NewReader(br)), f, nil
	}
	return io.NopCloser(br), f, nil
}

// gzipMembers reads a gzip file as gzip -d does: one member after another,
// each with its CRC-32 and size checked, and zeros after the last one
// ignored (the padding of tapes and block devices). Anything else after
// the last member is an error, as it is for GNU tar.
type gzipMembers struct {
	br *bufio.Reader
	z  *gzip.Reader
}

func newGzipMembers(br *bufio.Reader) (*gzipMembers, error) {
	z, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	z.Multistream(false)
	return &gzipMembers{br: br, z: z}, nil
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.z.Read(p)
		if n > 0 {
			return n, nil // a member's end comes again with no data
		}
		if err != io.EOF {
			return 0, err
		}
		magic, _ := g.br.Peek(2)
		switch {
		case len(magic) == 0:
			return 0, io.EOF
		case bytes.Equal(magic, []byte{0x1f, 0x8b}):
			if err := g.z.Reset(g.br); err != nil {
				return 0, err
			}
			g.z.Multistream(false)
		default:
			return 0, zerosToEnd(g.br)
		}
	}
}

// zerosToEnd reads r to its end: io.EOF when it held only zeros.
func zerosToEnd(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return errors.New("gzip: data after the last member that is neither zeros nor another member")
			}
		}
		if err != nil {
			return err
		}
	}
}

func (g *gzipMembers) Close() error { return g.z.Close() }

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// pipeTo starts prog args, reading what is written to the returned
// WriteCloser and writing its output to w; Close waits for it.
type progWriter struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	stderr bytes.Buffer
}

func pipeTo(prog string, args []string, w io.Writer) (io.WriteCloser, error) {
	p := &progWriter{cmd: exec.Command(prog, args...)}
	p.cmd.SysProcAttr = diesWithBuild()
	p.cmd.Stdout = w
	p.cmd.Stderr = &p.stderr
	in, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.in = in
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *progWriter) Write(b []byte) (int, error) { return p.in.Write(b) }

func (p *progWriter) Close() error {
	p.in.Close()
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %v %s", p.cmd.Path, err, strings.TrimSpace(p.stderr.String()))
	}
	return nil
}

// decodeWith decodes r with a host program. Its output is buffered:
// archive/tar reads a header 512 bytes at a time, which would otherwise be
// one read from the pipe each (reads of a buffer's size or more bypass it).
func decodeWith(prog string, args []string, r io.Reader) (io.ReadCloser, error) {
	p, err := pipeFrom(prog, args, r)
	if err != nil {
		return nil, err
	}
	return bufferedReader{bufio.NewReaderSize(p, 1<<16), p}, nil
}

type bufferedReader struct {
	*bufio.Reader
	io.Closer
}

// progReader is the output of a decompressing program.
type progReader struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr bytes.Buffer
	done   bool
}

func pipeFrom(prog string, args []string, r io.Reader) (io.ReadCloser, error) {
	p := &progReader{cmd: exec.Command(prog, args...)}
	p.cmd.SysProcAttr = diesWithBuild()
	p.cmd.Stdin = r
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *progReader) Read(b []byte) (int, error) {
	n, err := p.out.Read(b)
	if err == io.EOF && !p.done {
		p.done = true
		if werr := p.cmd.Wait(); werr != nil {
			return n, fmt.Errorf("%s: %v %s", p.cmd.Path, werr, strings.TrimSpace(p.stderr.String()))
		}
	}
	return n, err
}

func (p *progReader) Close() error {
	if !p.done {
		p.done = true
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
	return nil
}

// diesWithBuild makes a compressor die when the build does, even by
// SIGKILL (it would otherwise go on until its pipe closes). The signal is
// tied to the thread that started it: Go keeps its threads (none of these
// goroutines locks one), so that is the build's life.
func diesWithBuild() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
