package rootfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Names of the helpers this package registers with stage/userns. They run
// as root of the build's user namespace, without a Root (the host's files
// are visible, owned by the mapped ids), and only read or write the tree:
// the tarball and the device manifest are handled by the calling process,
// through stdin and stdout.
const (
	helperUnpack = "rootfs.unpack" // args: ROOT RECORD(0|1); stdin: tar; stdout: device manifest
	helperPack   = "rootfs.pack"   // args: JSON packConfig; stdout: tar
)

func init() {
	userns.RegisterHelper(helperUnpack, func(args []string) error {
		if len(args) != 2 {
			return errors.New("usage: rootfs.unpack ROOT 0|1")
		}
		devs, err := extract(context.Background(), bufio.NewReaderSize(os.Stdin, 1<<20), args[0], args[1] == "1")
		if err != nil {
			return err
		}
		b, err := marshalManifest(devs)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	})
	userns.RegisterHelper(helperPack, func(args []string) error {
		if len(args) != 1 {
			return errors.New("usage: rootfs.pack CONFIG")
		}
		var cfg packConfig
		if err := json.Unmarshal([]byte(args[0]), &cfg); err != nil {
			return err
		}
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		if err := writeTree(context.Background(), w, cfg); err != nil {
			return err
		}
		return w.Flush()
	})
}

func unpackInNamespace(ctx context.Context, r io.Reader, root string, record bool) ([]Device, error) {
	rec := "0"
	if record {
		rec = "1"
	}
	var out, errb bytes.Buffer
	// The namespace reads the stream from a pipe, where a failure to
	// decode it (a damaged stream, found at its end) shows only as an
	// early end; so that failure is kept here and is the one reported.
	src := &readFailure{r: r}
	err := userns.Run(ctx, userns.Cmd{Helper: helperUnpack, HelperArgs: []string{root, rec}, Dir: "/",
		Stdin: src, Stdout: &out, Stderr: &errb})
	if src.err != nil {
		return nil, damaged("decoding the compressed stream", src.err)
	}
	if err != nil {
		return nil, nsError(err, &errb)
	}
	return parseManifest(out.Bytes(), "from the namespace")
}

// readFailure is r that keeps its first failure other than the end.
// os/exec's Wait returns after its last Read, so Run's caller may look at
// err then.
type readFailure struct {
	r   io.Reader
	err error
}

func (f *readFailure) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

func packInNamespace(ctx context.Context, w io.Writer, cfg packConfig) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	var errb bytes.Buffer
	err = userns.Run(ctx, userns.Cmd{Helper: helperPack, HelperArgs: []string{string(b)}, Dir: "/",
		Stdout: w, Stderr: &errb})
	if err != nil {
		return nsError(err, &errb)
	}
	return nil
}

func nsError(err error, stderr *bytes.Buffer) error {
	var ee *userns.ExitError
	if errors.As(err, &ee) && ee.Message != "" {
		return errors.New(ee.Message)
	}
	if s := bytes.TrimSpace(stderr.Bytes()); len(s) > 0 {
		return fmt.Errorf("%w: %s", err, s)
	}
	return err
}
