package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The methods below are for the builder's own work in a target tree (the
// base system's set-up, GRUB's files, the rootfs cache), as opposed to the
// file steps' semantics above them: what they create is owned by this
// process (root of the host, or the ordinary user who is root of the
// build's namespace, so root inside either way); a final symbolic link is
// never followed when something is created, changed or removed; and a file
// is opened for reading or writing only when it is a regular file, so that
// a FIFO cannot block the build and a device node (a link to /dev/sda of a
// tree unpacked as root, say) is never opened. Directories on the way are
// resolved inside the root, as everywhere in Root.

// ErrNotRegular is wrapped by the errors of the methods that only read or
// write regular files, when something else is at the path.
var ErrNotRegular = errors.New("not a regular file")

// parentAt opens the directory holding p (resolved inside the root) and
// returns it with p's last component. The root itself has no parent.
func (r *Root) parentAt(op, p string) (int, string, error) {
	dir, name := path.Split(rel(p))
	if name == "." {
		return -1, "", pathErr(op, p, unix.EINVAL)
	}
	pfd, err := r.openat(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", pathErr(op, p, err)
	}
	return pfd, name, nil
}

// Stat describes p inside the root, following symbolic links inside it as
// the target itself would.
func (r *Root) Stat(p string) (os.FileInfo, error) {
	fd, err := r.openat(p, unix.O_PATH, 0)
	if err != nil {
		return nil, pathErr("stat", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, pathErr("stat", p, err)
	}
	return statInfo{name: path.Base("/" + rel(p)), st: st}, nil
}

// Remove removes the file, symbolic link, node or empty directory p (a
// link itself, never what it points to).
func (r *Root) Remove(p string) error {
	pfd, name, err := r.parentAt("remove", p)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	err = unix.Unlinkat(pfd, name, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return pathErr("remove", p, err)
	}
	return nil
}

// openNoFollow opens p itself (O_PATH, a final link not followed) and
// returns it with its stat.
func (r *Root) openNoFollow(op, p string) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.openat(p, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, st, pathErr(op, p, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, pathErr(op, p, err)
	}
	return fd, st, nil
}

// procPath names an open file descriptor of this process in /proc, to act
// on exactly that file: chmod through it, or reopen it with other flags
// (an O_PATH descriptor opens nothing, so a device or FIFO is not
// touched before its type is known).
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// Chmod sets the mode of p, which must not be a symbolic link (a link
// there is an error, not followed).
func (r *Root) Chmod(p string, mode os.FileMode) error {
	fd, st, err := r.openNoFollow("chmod", p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return pathErr("chmod", p, unix.ELOOP)
	}
	if err := unix.Chmod(procPath(fd), unixMode(mode)); err != nil {
		return pathErr("chmod", p, err)
	}
	return nil
}

// Setxattr sets the extended attribute name of p, which must not be a
// symbolic link (a link there is an error, not followed).
func (r *Root) Setxattr(p, name string, value []byte) error {
	fd, st, err := r.openNoFollow("setxattr", p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return pathErr("setxattr", p, unix.ELOOP)
	}
	if err := unix.Setxattr(procPath(fd), name, value, 0); err != nil {
		return pathErr("setxattr "+name, p, err)
	}
	return nil
}

// Lchown sets the owner of p (of a link itself, not what it points to).
func (r *Root) Lchown(p string, uid, gid int) error {
	pfd, name, err := r.parentAt("chown", p)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("chown", p, explainPerm(err))
	}
	return nil
}

// Chtimes sets the access and modification times of p (of a link itself)
// to t.
func (r *Root) Chtimes(p string, t time.Time) error {
	pfd, name, err := r.parentAt("chtimes", p)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.UtimesNanoAt(pfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("chtimes", p, err)
	}
	return nil
}

// Mknod creates the node p (mode holds the type, S_IFCHR, S_IFBLK or
// S_IFIFO, and the permissions less the umask). Nothing may be at p.
func (r *Root) Mknod(p string, mode uint32, dev uint64) error {
	pfd, name, err := r.parentAt("mknod", p)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Mknodat(pfd, name, mode, int(dev)); err != nil {
		return pathErr("mknod", p, err)
	}
	return nil
}

// Mkdirs creates p and its missing parents with mode perm (less the
// umask), owned by this process, as os.MkdirAll does; directories already
// there (also through a link inside the root) are left as they are.
func (r *Root) Mkdirs(p string, perm os.FileMode) error {
	parts := strings.Split(rel(p), "/")
	if parts[0] == "." {
		return nil
	}
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		fd, err := r.openat(sub, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return pathErr("mkdir", sub, err)
		}
		pfd, name, err := r.parentAt("mkdir", sub)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, name, unixMode(perm))
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return pathErr("mkdir", sub, err)
		}
	}
	return nil
}

// CreateNew creates the regular file p with data, mode perm (less the
// umask) and this process as owner. Anything already at p, even a
// dangling link, makes it fail with an error wrapping fs.ErrExist.
func (r *Root) CreateNew(p string, data []byte, perm os.FileMode) error {
	fd, err := r.openat(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, unixMode(perm))
	if err != nil {
		return pathErr("create", p, err)
	}
	return writeClose(fd, p, data)
}

// PutFile writes data into the regular file p, created as CreateNew does
// when missing, else truncated (keeping its mode and owner). A link, a
// FIFO, a device or a directory at p is an error wrapping ErrNotRegular
// and is left alone.
func (r *Root) PutFile(p string, data []byte, perm os.FileMode) error {
	err := r.CreateNew(p, data, perm)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	fd, err := r.reopenRegular("write", p, unix.O_PATH|unix.O_NOFOLLOW, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return err
	}
	return writeClose(fd, p, data)
}

func writeClose(fd int, p string, data []byte) error {
	f := os.NewFile(uintptr(fd), "/"+rel(p))
	_, err := f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return pathErr("write", p, err)
	}
	return nil
}

// reopenRegular opens p with the O_PATH flags find, checks that it is a
// regular file and only then opens that very file with flags.
func (r *Root) reopenRegular(op, p string, find, flags int) (int, error) {
	pfd, err := r.openat(p, find, 0)
	if err != nil {
		return -1, pathErr(op, p, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return -1, pathErr(op, p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, pathErr(op, p, fmt.Errorf("%w (%s)", ErrNotRegular, fileType(st.Mode)))
	}
	fd, err := unix.Open(procPath(pfd), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, pathErr(op, p, fmt.Errorf("reopening it through /proc (is /proc mounted?): %w", err))
	}
	return fd, nil
}

// fileType names the type in a stat mode, for errors.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "a regular file"
}

// OpenRegular opens p for reading, following links inside the root (an
// absolute link means that path in the image), if it is a regular file;
// anything else is an error wrapping ErrNotRegular and is not opened.
func (r *Root) OpenRegular(p string) (*os.File, error) {
	fd, err := r.reopenRegular("open", p, unix.O_PATH, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "/"+rel(p)), nil
}

// ReadRegular reads the regular file p as OpenRegular opens it; a file
// larger than max bytes is an error.
func (r *Root) ReadRegular(p string, max int64) ([]byte, error) {
	f, err := r.OpenRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, pathErr("read", p, err)
	}
	if int64(len(b)) > max {
		return nil, pathErr("read", p, fmt.Errorf("larger than %d bytes", max))
	}
	return b, nil
}

// ReadDirNames lists the names in the directory p inside the root, sorted;
// a final symlink is not followed (it is an error, as any non-directory).
func (r *Root) ReadDirNames(p string) ([]string, error) {
	fd, err := r.openat(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, pathErr("readdir", p, err)
	}
	f := os.NewFile(uintptr(fd), "/"+rel(p))
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, pathErr("readdir", p, err)
	}
	slices.Sort(names)
	return names, nil
}
