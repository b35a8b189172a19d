package userns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// undo removes, in reverse order, what the namespace's init reported it
// created on the stage at root: empty mount-point directories and files, and
// policy-rc.d if it still holds what was written; and gives the stage's
// resolv.conf its content back. It runs on the host after
// every process of the namespace is gone; paths are resolved with
// RESOLVE_IN_ROOT so that symlinks planted in the stage cannot redirect it
// to host files.
func undo(root string, created []report) error {
	if root == "" || len(created) == 0 {
		return nil
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("userns: restoring the stage: %w", err)
	}
	defer unix.Close(rootfd)
	var errs []error
	for i := len(created) - 1; i >= 0; i-- {
		if err := undoOne(rootfd, created[i]); err != nil {
			what := "removing"
			if created[i].Lent != nil {
				what = "giving back the content of"
			}
			errs = append(errs, fmt.Errorf("userns: restoring the stage %s: %s %s: %w", root, what, created[i].Created, err))
		}
	}
	return errors.Join(errs...)
}

func undoOne(rootfd int, r report) error {
	dir, base := filepath.Split(filepath.Clean("/" + r.Created))
	if base == "" {
		return nil
	}
	rel := strings.TrimPrefix(filepath.Clean(dir), "/")
	if rel == "" {
		rel = "."
	}
	dfd, err := unix.Openat2(rootfd, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(dfd)

	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	switch {
	case r.Dir:
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil // replaced by something else: not ours any more
		}
		err = unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil
	case r.Lent != nil:
		return giveBack(dfd, base, &st, r.Lent)
	case r.Policy:
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		b, err := io.ReadAll(io.LimitReader(f, int64(len(policyRcD))+1))
		f.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(b, []byte(policyRcD)) {
			return nil // something installed its own
		}
		err = unix.Unlinkat(dfd, base, 0)
		if err != nil {
			return err
		}
		return nil
	default:
		if st.Size != 0 {
			return nil // written to: keep it
		}
		err = unix.Unlinkat(dfd, base, 0)
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
