package stage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// noiseFiles are files a Debian tree gains during a build that record when
// or where it was built and nothing a system needs: reproducible-builds
// practice (and mmdebstrap's) removes them. Paths are relative to the root.
var noiseFiles = []string{
	"var/cache/ldconfig/aux-cache", // ldconfig's cache of file times
	"var/log/dpkg.log",
	"var/log/alternatives.log",
	"var/log/bootstrap.log",
	"var/log/apt/history.log",
	"var/log/apt/term.log",
	"var/log/apt/eipp.log.xz",
	"var/lib/dbus/machine-id",
	"var/lib/systemd/random-seed",
	"var/cache/debconf/config.dat-old",
	"var/cache/debconf/templates.dat-old",
	"var/lib/dpkg/status-old",
	"var/lib/dpkg/diversions-old",
	"var/lib/dpkg/statoverride-old",
	"etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/subuid-", "etc/subgid-",
}

// emptiedFiles keep existing but lose their content: /etc/machine-id is
// then generated on the first boot, as systemd documents for images.
var emptiedFiles = []string{"etc/machine-id"}

// removeNoise removes build-time noise from the tree at root (see
// noiseFiles). Files are looked up without following symlinks out of the
// tree: a noise path that is a symlink is left alone.
func removeNoise(root string) error {
	for _, rel := range noiseFiles {
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || !insideWithoutLinks(root, rel) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	for _, rel := range emptiedFiles {
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || !insideWithoutLinks(root, rel) {
			continue
		}
		if err := os.Truncate(p, 0); err != nil {
			return err
		}
	}
	return nil
}

// insideWithoutLinks reports whether no directory on rel's way from root is
// a symlink, so that acting on root/rel acts inside the tree.
func insideWithoutLinks(root, rel string) bool {
	dir := filepath.Dir(rel)
	for dir != "." && dir != "/" {
		fi, err := os.Lstat(filepath.Join(root, dir))
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return false
		}
		dir = filepath.Dir(dir)
	}
	return true
}
