// Package flock takes exclusive flock(2) locks on files, waiting for them
// as long as a context allows.
package flock

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Lock creates file if needed and waits until this process holds an
// exclusive lock on it, or ctx is done. The returned function releases it.
// The lock is released too when the process dies, so a killed holder never
// blocks the others.
func Lock(ctx context.Context, file string) (unlock func(), err error) {
	return lock(ctx, file, nil)
}

// LockSaying is Lock, calling waiting once if the lock is held by another
// process, before it waits.
func LockSaying(ctx context.Context, file string, waiting func()) (unlock func(), err error) {
	return lock(ctx, file, waiting)
}

func lock(ctx context.Context, file string, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	delay := 50 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", file, err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w", file, ctx.Err())
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}
