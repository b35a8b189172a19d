package asuser

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// MkdirOwned creates dir and any missing parents like os.MkdirAll, and
// gives every directory it creates to uid:gid. A test running as root that
// makes a directory under User's home must not leave a root-owned parent
// (~/.cache, say) in the way of User's own programs later in the run.
func MkdirOwned(dir string, uid, gid int) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirOwned(parent, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by someone else: not ours to give away
		}
		return err
	}
	return os.Lchown(dir, uid, gid)
}
