package userns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// undo removes, in reverse order, what the namespace's init reported it
// created on the stage root (the directory Run opened before the namespace
// started, whatever its path leads to now): empty mount-point directories
// and files, and policy-rc.d if it still holds what was written; and gives
// the stage's resolv.conf its content back. It runs on the host after
// every process of the namespace is gone; paths are resolved with
// RESOLVE_IN_ROOT, no magic links and no crossing of mounts, so that links
// planted in the stage (also by the command, meanwhile) cannot redirect it
// to host files.
func undo(root *os.File, created []report) error {
	if root == nil || len(created) == 0 {
		return nil
	}
	rootfd := int(root.Fd())
	var errs []error
	for i := len(created) - 1; i >= 0; i-- {
		if err := undoOne(rootfd, created[i]); err != nil {
			what := "removing"
			if created[i].Lent != nil {
				what = "giving back the content of"
			}
			errs = append(errs, fmt.Errorf("userns: restoring the stage %s: %s %s: %w", root.Name(), what, created[i].Created, err))
		}
	}
	return errors.Join(errs...)
}

func undoOne(rootfd int, r report) error {
	dir, base := filepath.Split(filepath.Clean("/" + r.Created))
	if base == "" {
		return nil
	}
	dfd, err := unix.Openat2(rootfd, rel(dir), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
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
		return removeOurPolicy(dfd, base)
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

// removeOurPolicy removes the policy-rc.d file base of directory dfd if
// it still holds what this package wrote there, and keeps one something
// else installed.
func removeOurPolicy(dfd int, base string) error {
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
	return unix.Unlinkat(dfd, base, 0)
}
