package userns

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// stageFS creates, mounts on and writes the stage's paths from inside the
// namespace, after pivot_root. Every path is resolved by the kernel from
// the stage's root (openat2 with RESOLVE_IN_ROOT and no magic links, so
// /proc/1/fd/N cannot lead to a descriptor init holds on a host
// directory) and acted on through the resulting descriptor, never by
// name again. What init creates, writes or mounts on must lie on the
// stage's own files or on a tmpfs init mounted: never on /proc, /sys, a
// device node or a bind mount's host tree, where a link planted in the
// image could otherwise lead.
type stageFS struct {
	rep   *reporter
	root  int             // O_PATH descriptor of the stage's "/"
	own   map[uint64]bool // the stage's own mounts: its root and the build's mount points
	fresh map[uint64]bool // the tmpfs mounts made by init
}

func newStageFS(rep *reporter) (*stageFS, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the stage's root: %w", err)
	}
	s := &stageFS{rep: rep, root: fd, own: map[uint64]bool{}, fresh: map[uint64]bool{}}
	id, err := mountOf(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.own[id] = true
	return s, nil
}

func (s *stageFS) close() { unix.Close(s.root) }

// resolve opens the image path p (absolute or not, it is taken from the
// stage's root) with flags.
func (s *stageFS) resolve(p string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(s.root, rel(p), &how)
		if err != unix.EINTR && err != unix.EAGAIN {
			return fd, err
		}
	}
}

// rel turns an image path into one relative to the stage's root.
func rel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func mountOf(fd int) (uint64, error) {
	var sx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sx); err != nil {
		return 0, fmt.Errorf("statx: %w", err)
	}
	return sx.Mnt_id, nil
}

// inside fails unless fd, which image path p resolved to, lies on the
// stage's own files or on a tmpfs of this namespace.
func (s *stageFS) inside(fd int, p string) error {
	id, err := mountOf(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !s.own[id] && !s.fresh[id] {
		return fmt.Errorf("%s leads out of the image's own files (onto /proc, /sys, a device node or a bind mount's host directory)", p)
	}
	return nil
}

// ensure returns an O_PATH descriptor of the image path p, a directory if
// dir, else a regular file, creating what is missing. A dangling link, a
// link loop or a /proc magic link on the way, or something of another
// type at p, is an error that names the path in the image.
func (s *stageFS) ensure(p string, dir bool) (int, error) {
	cur, err := s.resolve("/", unix.O_PATH)
	if err != nil {
		return -1, err
	}
	sofar := ""
	parts := strings.Split(rel(p), "/")
	for i, name := range parts {
		if name == "." {
			break
		}
		sofar += "/" + name
		wantDir := dir || i < len(parts)-1
		next, err := s.resolve(sofar, unix.O_PATH)
		if errors.Is(err, unix.ENOENT) {
			next, err = s.create(cur, sofar, wantDir)
		} else if err != nil {
			err = resolveErr(sofar, err)
		}
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
		if err := isKind(cur, sofar, wantDir); err != nil {
			unix.Close(cur)
			return -1, err
		}
	}
	return cur, nil
}

func resolveErr(p string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("%s in the image: %w (a link loop, or a link through /proc's magic links)", p, err)
	}
	return fmt.Errorf("%s in the image: %w", p, err)
}

// create makes the missing last component of image path p in its parent
// directory (the descriptor parent), and reports it when it is on the
// stage's own files, so that Run removes it afterwards.
func (s *stageFS) create(parent int, p string, dir bool) (int, error) {
	name := path.Base(p)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		// Where it should lead is the image's business, not a guess.
		return -1, fmt.Errorf("%s in the image is a dangling symbolic link", p)
	}
	if err := s.inside(parent, path.Dir(p)); err != nil {
		return -1, fmt.Errorf("cannot create %s: %w", p, err)
	}
	if id, err := mountOf(parent); err == nil && s.own[id] {
		s.rep.send(report{Created: p, Dir: dir})
	}
	if dir {
		if err := unix.Mkdirat(parent, name, 0o755); err != nil {
			return -1, fmt.Errorf("creating %s: %w", p, err)
		}
	} else {
		fd, err := unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return -1, fmt.Errorf("creating %s: %w", p, err)
		}
		unix.Close(fd)
	}
	fd, err := unix.Openat(parent, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", p, err)
	}
	return fd, nil
}

// isKind fails unless fd is a directory (dir) or a regular file.
func isKind(fd int, p string, dir bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	is := st.Mode & unix.S_IFMT
	switch {
	case dir && is != unix.S_IFDIR:
		return fmt.Errorf("%s in the image is %s, not a directory", p, kind(is))
	case !dir && is != unix.S_IFREG:
		return fmt.Errorf("%s in the image is %s, not a regular file", p, kind(is))
	}
	return nil
}

func kind(mode uint32) string {
	switch mode {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device node"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "not a file or directory"
}

// mountOn attaches the detached mount src (a directory if dir, else a
// file) on the image path p, created if missing.
func (s *stageFS) mountOn(src int, p string, dir bool) error {
	fd, err := s.ensure(p, dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := s.inside(fd, p); err != nil {
		return fmt.Errorf("cannot mount on %s: %w", p, err)
	}
	var st, rootSt unix.Stat_t
	if unix.Fstat(fd, &st) == nil && unix.Fstat(s.root, &rootSt) == nil && st.Dev == rootSt.Dev && st.Ino == rootSt.Ino {
		return fmt.Errorf("cannot mount on %s: in the image it leads to / itself", p)
	}
	if err := unix.MoveMount(src, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting on %s: %w", p, err)
	}
	return nil
}

// tmpfs mounts a new tmpfs with options opts and mount attributes attrs on
// the image path p, and counts it as the namespace's own.
func (s *stageFS) tmpfs(p string, opts map[string]string, attrs int) error {
	fd, err := newMount("tmpfs", opts, attrs)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := s.mountOn(fd, p, true); err != nil {
		return fmt.Errorf("mounting a tmpfs: %w", err)
	}
	id, err := mountOf(fd)
	if err != nil {
		return fmt.Errorf("the tmpfs on %s: %w", p, err)
	}
	s.fresh[id] = true
	return nil
}

// policy writes /usr/sbin/policy-rc.d when the image has a /usr/sbin of its
// own (not one that leads elsewhere) and no policy-rc.d.
func (s *stageFS) policy() error {
	const dir, name = "/usr/sbin", "policy-rc.d"
	sbin, err := s.resolve(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil // no /usr/sbin in the image: no service to start
	}
	defer unix.Close(sbin)
	if id, err := mountOf(sbin); err != nil || !s.own[id] {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(sbin, name, &st, unix.AT_SYMLINK_NOFOLLOW); !errors.Is(err, unix.ENOENT) {
		return nil // the image has its own (or something in its place)
	}
	s.rep.send(report{Created: dir + "/" + name, Policy: true})
	fd, err := unix.Openat(sbin, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o755)
	if err != nil {
		return fmt.Errorf("writing %s/%s: %w", dir, name, err)
	}
	defer unix.Close(fd)
	if err := writeAll(fd, []byte(policyRcD)); err != nil {
		return fmt.Errorf("writing %s/%s: %w", dir, name, err)
	}
	return nil
}

// writeAll writes b at the start of the file fd.
func writeAll(fd int, b []byte) error {
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// attachCarried attaches the carried mounts (fds, or the next of procs for
// a proc) at their image paths, created if missing, and gives copies back
// (see Carry.lend). With virtual, those in
// the places of Virtual's mounts are left out: a confined command has the
// namespace's own proc, /sys, /dev, /run and /tmp, as every chroot step.
func (s *stageFS) attachCarried(infos []carriedInfo, fds, procs []int, virtual bool) error {
	copies := noCopies(len(infos))
	defer closeAll(copies)
	for i, info := range infos {
		fd := fds[i]
		if info.Proc {
			fd, procs = procs[0], procs[1:]
		}
		if virtual && inVirtual(info.Target) {
			continue
		}
		if err := s.mountOn(fd, info.Target, !info.File); err != nil {
			err = fmt.Errorf("the mount kept on %s: %w", info.Target, err)
			return errors.Join(err, returnCarried(fdCarry, copies))
		}
		if !info.Proc {
			if err := copyBack(copies, i, fd, info.Target); err != nil {
				return errors.Join(err, returnCarried(fdCarry, copies))
			}
		}
	}
	return returnCarried(fdCarry, copies)
}

// inVirtual reports whether the image path p is in one of Virtual's mounts.
func inVirtual(p string) bool {
	for _, v := range []string{"/proc", "/sys", "/dev", "/run", "/tmp"} {
		if p == v || strings.HasPrefix(p, v+"/") {
			return true
		}
	}
	return false
}
