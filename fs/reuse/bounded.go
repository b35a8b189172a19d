package reuse

import (
	"context"
	"fmt"
	"io"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// maxListing bounds what a listing tool may print: a directory loop in a
// crafted FAT filesystem would make mdir list for ever.
const maxListing = 64 << 20

// bounded wraps run so that a tool printing more than maxListing bytes is
// stopped (its context cancelled) and the run fails saying why.
func bounded(run fstool.Runner) fstool.Runner {
	if run == nil {
		run = fstool.Exec
	}
	return func(ctx context.Context, c fstool.Command) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		lw := &limitWriter{w: c.Stdout, left: maxListing, cancel: cancel}
		c.Stdout = lw
		err := run(ctx, c)
		if lw.over {
			return fmt.Errorf("%s printed more than %d MiB listing the filesystem, and was stopped: a directory loop? (the filesystem is corrupt or crafted)", c.Args[0], maxListing>>20)
		}
		return err
	}
}

type limitWriter struct {
	w      io.Writer
	left   int64
	over   bool
	cancel func()
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		l.cancel()
		return 0, io.ErrShortWrite
	}
	l.left -= int64(len(p))
	if l.w == nil {
		return len(p), nil
	}
	return l.w.Write(p)
}
