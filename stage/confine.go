package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Root is a directory that every path given to its methods is confined to:
// paths are resolved by the kernel as if the directory were "/" (openat2
// with RESOLVE_IN_ROOT), so neither ".." nor a symlink inside the tree, even
// an absolute one, can lead outside it. This is how a spec path like
// "../../etc/passwd" or an image symlink "etc/x -> /etc" stays in the stage.
type Root struct {
	dir string
	fd  int
}

// OpenRoot opens dir as a confinement root. Close it when done.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening stage directory %s: %w", dir, err)
	}
	return &Root{dir: dir, fd: fd}, nil
}

// Close releases the root's directory handle.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Dir is the host path of the root.
func (r *Root) Dir() string { return r.dir }

// rel turns an image path ("/etc/x", "etc/x") into a path relative to the
// root; "" or "/" is the root itself.
func rel(p string) string {
	p = strings.TrimLeft(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func (r *Root) openat(p string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	for {
		fd, err := unix.Openat2(r.fd, rel(p), &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

func pathErr(op, p string, err error) error {
	return &os.PathError{Op: op, Path: "/" + strings.TrimPrefix(rel(p), "."), Err: err}
}

// Ownership is who owns a created file and its mode bits.
type Ownership struct {
	Mode     os.FileMode // permission bits plus setuid/setgid/sticky
	UID, GID int
}

func unixMode(m os.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	return mode
}

// ModeFromUnix converts a numeric mode such as a spec's `perm: 0o4755`
// into an os.FileMode with the special bits in Go's representation.
func ModeFromUnix(n int64) os.FileMode {
	m := os.FileMode(n & 0o777)
	if n&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if n&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if n&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// setOwnership applies owner and mode to an open file; the mode is set
// after the owner because chown clears setuid and setgid bits.
func setOwnership(fd int, o Ownership) error {
	if err := unix.Fchown(fd, o.UID, o.GID); err != nil {
		return fmt.Errorf("chown to %d:%d: %w", o.UID, o.GID, explainPerm(err))
	}
	if err := unix.Fchmod(fd, unixMode(o.Mode)); err != nil {
		return fmt.Errorf("chmod to %#o: %w", unixMode(o.Mode), err)
	}
	return nil
}

func explainPerm(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w (owners other than yourself need root or the build's user namespace)", err)
	}
	return err
}

// MkdirAll creates p and any missing parents. Missing parents get mode 0755
// and owner 0:0; p itself gets leaf's mode and owner, also when it already
// existed (so the step is idempotent). It reports whether p was created.
func (r *Root) MkdirAll(p string, leaf Ownership) (bool, error) {
	parts := strings.Split(rel(p), "/")
	if parts[0] == "." {
		return false, nil
	}
	created := false
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		fd, err := r.openat(sub, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return created, pathErr("mkdir", sub, err)
		}
		own := Ownership{Mode: 0o755}
		if i == len(parts)-1 {
			own = leaf
		}
		if err := r.mkdirOne(sub, own); err != nil {
			return created, err
		}
		if i == len(parts)-1 {
			created = true
		}
	}
	if !created {
		fd, err := r.openat(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return false, pathErr("open", p, err)
		}
		defer unix.Close(fd)
		if err := setOwnership(fd, leaf); err != nil {
			return false, pathErr("chown", p, err)
		}
	}
	return created, nil
}

// mkdirOne creates the last component of p inside its (existing, confined)
// parent and sets its owner and mode.
func (r *Root) mkdirOne(p string, own Ownership) error {
	dir, name := path.Split(rel(p))
	pfd, err := r.openat(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return pathErr("mkdir", dir, err)
	}
	defer unix.Close(pfd)
	existed := false
	if err := unix.Mkdirat(pfd, name, 0o700); errors.Is(err, unix.EEXIST) {
		existed = true
	} else if err != nil {
		return pathErr("mkdir", p, err)
	}
	fd, err := r.openat(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		var st unix.Stat_t
		if existed && errors.Is(err, unix.ENOENT) && unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("%s in the image is a symbolic link to a directory the image does not have (links are followed inside the image, never on the host): create its target first or remove the link", "/"+rel(p))
		}
		return pathErr("open", p, err)
	}
	defer unix.Close(fd)
	if err := setOwnership(fd, own); err != nil {
		return pathErr("mkdir", p, err)
	}
	return nil
}

// WriteFile creates or replaces the file p with the content of src. The
// parent directory must exist. A symlink at p is followed inside the root,
// never outside it.
func (r *Root) WriteFile(p string, src io.Reader, own Ownership) error {
	dir := path.Dir(rel(p))
	pfd, err := r.openat(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("cannot create %s: its directory %s does not exist in the image", "/"+rel(p), "/"+strings.TrimPrefix(dir, "."))
		}
		return pathErr("open", dir, err)
	}
	unix.Close(pfd)
	if err := r.regularOrAbsent(p); err != nil {
		return err
	}
	// O_NONBLOCK: should a FIFO appear at p after all, opening it fails
	// (ENXIO) instead of waiting for a reader forever.
	fd, err := r.openat(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NONBLOCK, 0o600)
	if err != nil {
		return pathErr("create", p, err)
	}
	f := os.NewFile(uintptr(fd), "/"+rel(p))
	defer f.Close()
	if _, err := io.Copy(f, src); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Path == f.Name() {
			return err // f's own error already names the file
		}
		return pathErr("write", p, err)
	}
	if err := setOwnership(fd, own); err != nil {
		return pathErr("chown", p, err)
	}
	return f.Close()
}

// regularOrAbsent fails when p (following symlinks inside the root) is
// something other than a regular file: writing to a FIFO would wait for a
// reader forever, and a device node's "content" is not a file's.
func (r *Root) regularOrAbsent(p string) error {
	fd, err := r.openat(p, unix.O_PATH, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return pathErr("open", p, err)
	}
	defer unix.Close(fd)
	return checkRegular(fd, p)
}

// checkRegular fails unless fd is a regular file.
func checkRegular(fd int, p string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return pathErr("stat", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return pathErr("read", p, unix.EISDIR)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s in the image is %s, not a regular file: remove it first (a file step reads and writes only regular files): %w", "/"+strings.TrimPrefix(rel(p), "."), fileType(st.Mode), ErrNotRegular)
	}
	return nil
}

// ReadFile reads the file p inside the root.
func (r *Root) ReadFile(p string) ([]byte, error) {
	fd, err := r.openat(p, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, pathErr("open", p, err)
	}
	if err := checkRegular(fd, p); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "/"+rel(p))
	defer f.Close()
	return io.ReadAll(f)
}

// Lstat describes p (not following a final symlink) inside the root.
func (r *Root) Lstat(p string) (os.FileInfo, error) {
	dir, name := path.Split(rel(p))
	if name == "." || name == "" {
		return os.Lstat(r.dir)
	}
	pfd, err := r.openat(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, pathErr("lstat", p, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, pathErr("lstat", p, err)
	}
	return statInfo{name: name, st: st}, nil
}

// Symlink creates (or replaces) a symbolic link p pointing to target, owned
// by uid:gid. The link's own name is resolved inside the root.
func (r *Root) Symlink(target, p string, uid, gid int) error {
	dir, name := path.Split(rel(p))
	pfd, err := r.openat(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return pathErr("symlink", p, err)
	}
	defer unix.Close(pfd)
	if err := unix.Unlinkat(pfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return pathErr("symlink", p, err)
	}
	if err := unix.Symlinkat(target, pfd, name); err != nil {
		return pathErr("symlink", p, err)
	}
	if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("chown", p, explainPerm(err))
	}
	return nil
}

// ResolveDir resolves the directory p inside the root as the target would
// see it (following its symlinks, all kept inside the root) and returns
// the path of that directory in the root with no symlink left on the way:
// "/boot" is "/srv/boot" when the image has boot -> /srv/boot. It fails when
// p is not a directory.
func (r *Root) ResolveDir(p string) (string, error) {
	fd, err := r.openat(p, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", pathErr("resolve", p, err)
	}
	defer unix.Close(fd)
	return r.pathOf(fd, p)
}

// pathOf returns where the open fd is in the root, from the kernel's own
// record of both (their /proc/self/fd links), which has no symlinks.
func (r *Root) pathOf(fd int, p string) (string, error) {
	top, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", r.fd))
	if err != nil {
		return "", fmt.Errorf("resolving %s in %s: %w", p, r.dir, err)
	}
	at, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("resolving %s in %s: %w", p, r.dir, err)
	}
	if at == top {
		return "/", nil
	}
	if top == "/" {
		return at, nil
	}
	if !strings.HasPrefix(at, top+"/") {
		// RESOLVE_IN_ROOT makes this impossible; a directory renamed away
		// meanwhile would show here.
		return "", fmt.Errorf("resolving %s: it is no longer inside %s", "/"+rel(p), r.dir)
	}
	return strings.TrimPrefix(at, top), nil
}

// CheckNoSymlinks checks that the directory p is inside the root with no
// symbolic link and no ".." on its way: its host path, the root's directory
// joined with p, then leads exactly there. Paths from ResolveDir pass; a
// component replaced by a symlink since fails with ELOOP.
func (r *Root) CheckNoSymlinks(p string) error {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	for {
		fd, err := unix.Openat2(r.fd, rel(p), &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return pathErr("check", p, err)
		}
		return unix.Close(fd)
	}
}

// Exists reports whether p exists inside the root (following symlinks, as
// the target itself would).
func (r *Root) Exists(p string) bool {
	fd, err := r.openat(p, unix.O_PATH, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
