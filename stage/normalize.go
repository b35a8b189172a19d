package stage

import (
	"errors"
	"path"
	"strings"

	"golang.org/x/sys/unix"
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
// noiseFiles) and empties emptiedFiles. Each file is found by the kernel
// beneath root with no symlink on its way (openat2 RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS): a noise path that is a symlink, or that lies behind
// one, is left alone, and nothing outside the tree can be reached.
func removeNoise(root string) error {
	r, err := OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, rel := range noiseFiles {
		if err := r.noiseFile(rel, func(dirfd int, name string) error {
			return unix.Unlinkat(dirfd, name, 0)
		}); err != nil {
			return err
		}
	}
	for _, rel := range emptiedFiles {
		if err := r.noiseFile(rel, func(dirfd int, name string) error {
			fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return unix.Ftruncate(fd, 0)
		}); err != nil {
			return err
		}
	}
	return nil
}

// noiseFile calls act on rel's directory and name when rel is a regular
// file reached without symlinks; otherwise it does nothing.
func (r *Root) noiseFile(rel string, act func(dirfd int, name string) error) error {
	dir, name := path.Split(rel)
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	if dir = strings.TrimSuffix(dir, "/"); dir == "" {
		dir = "."
	}
	dirfd, err := unix.Openat2(r.fd, dir, &how)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return pathErr("open", dir, err)
	}
	defer unix.Close(dirfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return pathErr("lstat", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	if err := act(dirfd, name); err != nil {
		return pathErr("normalise", rel, err)
	}
	return nil
}
