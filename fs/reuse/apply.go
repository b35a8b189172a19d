package reuse

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/stage"
)

// apply checks that rdump wrote every entry of the listing as listed and
// gives each its owner, mode and extended attributes, through stage.Root:
// nothing is followed out of dir. The root's empty lost+found goes: mke2fs
// makes its own.
func apply(dir string, entries []Entry) error {
	r, err := stage.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	// Deepest first: setting a directory's mode must not stop the work
	// below it (a directory the listing makes 0500).
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		switch e.kind() {
		case typeChr, typeBlk, typeFIFO, typeSock:
			continue
		}
		if err := applyOne(r, dir, e); err != nil {
			return err
		}
	}
	if fi, err := r.Lstat("/lost+found"); err == nil && fi.IsDir() {
		if err := r.Remove("/lost+found"); err != nil && !errors.Is(err, unix.ENOTEMPTY) {
			return err
		}
	}
	return nil
}

func applyOne(r *stage.Root, dir string, e Entry) error {
	if e.Path == "/" {
		if err := os.Lchown(dir, int(e.UID), int(e.GID)); err != nil {
			return ownerErr(e, err)
		}
		return os.Chmod(dir, stage.ModeFromUnix(int64(e.Mode&0o7777)))
	}
	fi, err := r.Lstat(e.Path)
	if err != nil {
		return fmt.Errorf("%s was not imported (see debugfs's messages above): %w", e.Path, err)
	}
	st := fi.Sys().(*unix.Stat_t)
	if st.Mode&unix.S_IFMT != e.kind() {
		return fmt.Errorf("%s was imported as mode %o, not %o", e.Path, st.Mode, e.Mode)
	}
	if e.kind() == typeReg && st.Size != e.Size {
		return fmt.Errorf("%s: %d of its %d bytes were imported", e.Path, st.Size, e.Size)
	}
	if err := r.Lchown(e.Path, int(e.UID), int(e.GID)); err != nil {
		return ownerErr(e, err)
	}
	if e.kind() == typeLnk {
		return nil
	}
	// After chown, which clears setuid and setgid bits.
	if err := r.Chmod(e.Path, stage.ModeFromUnix(int64(e.Mode&0o7777))); err != nil {
		return err
	}
	for _, x := range e.Xattrs {
		if err := r.Setxattr(e.Path, x.Name, x.Value); err != nil {
			return fmt.Errorf("%w (an ordinary user's build can set user.*, security.* and trusted.* attributes only inside its namespace's ids; build as root)", err)
		}
	}
	return nil
}

func ownerErr(e Entry, err error) error {
	return fmt.Errorf("%s: giving it owner %d:%d: %w (an ordinary user's build has the ids 0 to 65535; build as root for others)", e.Path, e.UID, e.GID, err)
}
