package userns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// devNodes are the host device nodes bind-mounted into /dev by Virtual.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// prepared holds the mounts made while the host's tree is still visible.
type prepared struct {
	proc   int
	sys    int
	dev    map[string]int
	resolv []byte // the host's /etc/resolv.conf; nil if it has none
	binds  []int
	procs  []int // for the carried proc mounts
}

func (p *prepared) close() {
	for _, fd := range append(append([]int{p.proc, p.sys}, p.binds...), p.procs...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	for _, fd := range p.dev {
		unix.Close(fd)
	}
}

// prepare makes, from the host's tree (the caller's paths, not the
// stage's), the detached mounts confine attaches in the stage.
func prepare(cfg *config) (pre *prepared, err error) {
	pre = &prepared{proc: -1, sys: -1, dev: map[string]int{}}
	if cfg.Virtual {
		// proc can only be mounted while a full proc is visible in the
		// mount namespace, so create it now and attach it later.
		if pre.proc, err = newMount("proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC); err != nil {
			return pre, err
		}
		// A fresh sysfs would need a network namespace of our own.
		if pre.sys, err = cloneTree("/sys", true); err != nil {
			return pre, err
		}
		for _, n := range devNodes {
			fd, err := unix.OpenTree(unix.AT_FDCWD, "/dev/"+n, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err != nil {
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) {
					continue
				}
				return pre, fmt.Errorf("bind-mounting /dev/%s: %w", n, err)
			}
			pre.dev[n] = fd
		}
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			pre.resolv = b
		}
	}
	for _, b := range cfg.Binds {
		fd, err := cloneTree(b.Source, b.ReadOnly)
		if err != nil {
			return pre, err
		}
		pre.binds = append(pre.binds, fd)
	}
	for _, c := range cfg.Carried {
		if c.Proc { // made even when it is not attached: attachCarried counts them
			fd, err := newMount("proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
			if err != nil {
				return pre, err
			}
			pre.procs = append(pre.procs, fd)
		}
	}
	return pre, nil
}

// enterRoot confines the namespace to the stage. The stage's parent
// directory is bound onto itself and pivoted into (the host's tree is then
// detached and unreachable), and the process chroots into the stage, a
// plain directory of that mount: "/" is no mount point of its own, so
// /proc/self/mountinfo has no line for it and findmnt finds no source for
// "/", as in vmdb2's chroot, which has no /proc. A bind mount always shows
// its filesystem's source, which is the build host's device or "tmpfs";
// target programs write what findmnt says of "/" into the image
// (raspi-firmware's kernel hook puts it into cmdline.txt as root=).
//
// The namespace's root may escape a chroot (it has CAP_SYS_CHROOT), and
// reaches the parent directory that way, no further. So the parent must be
// the caller's own: owned by the caller and writable by nobody else, as
// the stage's directories are. When it is not (a stage made directly in
// /tmp), the stage itself is bound onto itself and pivoted into, and "/"
// is that mount.
//
// The stage's path is resolved once, and must still lead to the directory
// Run opened (a component replaced in between would lead elsewhere); from
// then on only descriptors are used.
func enterRoot(cfg *config) error {
	fd, err := unix.Open(cfg.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the stage %s: %w", cfg.Root, err)
	}
	defer unix.Close(fd)
	if !sameDir(fd, cfg.RootDev, cfg.RootIno) {
		return fmt.Errorf("the stage %s was replaced while the namespace started (the path leads to another directory now): not entering it", cfg.Root)
	}
	parent, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the stage's parent directory: %w", err)
	}
	defer unix.Close(parent)
	if !ownParent(parent, cfg) {
		return pivotInto(fd, cfg.Root)
	}
	if err := pivotInto(parent, filepath.Dir(cfg.Root)); err != nil {
		return err
	}
	return chrootChild(filepath.Base(cfg.Root), cfg.RootDev, cfg.RootIno)
}

// sameDir reports whether fd is the directory dev, ino.
func sameDir(fd int, dev, ino uint64) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Dev == dev && st.Ino == ino
}

// ownParent reports whether the stage's parent directory is one only the
// namespace's root may change (owned by it, not writable by group or
// others), and not the stage itself.
func ownParent(parent int, cfg *config) bool {
	var st unix.Stat_t
	if unix.Fstat(parent, &st) != nil {
		return false
	}
	if st.Dev == cfg.RootDev && st.Ino == cfg.RootIno {
		return false
	}
	return st.Uid == uint32(unix.Geteuid()) && st.Mode&0o022 == 0
}

// pivotInto makes the directory fd a mount point of its own (a recursive
// bind onto itself) and pivots into it, detaching the host's tree.
func pivotInto(fd int, name string) error {
	mnt, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("bind-mounting %s: %w", name, err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind-mounting %s: %w", name, err)
	}
	if err := unix.Fchdir(mnt); err != nil {
		return fmt.Errorf("entering %s: %w", name, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", name, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's tree: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// chrootChild chroots into the directory dev, ino of the current root:
// the entry name when it is that directory (no link followed), else the
// entry that is (the stage's path may end in a symbolic link).
func chrootChild(name string, dev, ino uint64) error {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, name, &how)
	if err == nil && !sameDir(fd, dev, ino) {
		unix.Close(fd)
		fd, err = -1, unix.ENOENT
	}
	if err != nil {
		if fd, err = findChild(dev, ino, &how); err != nil {
			return err
		}
	}
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("entering the stage: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot into the stage: %w", err)
	}
	return nil
}

// findChild opens the entry of the current directory that is the
// directory dev, ino.
func findChild(dev, ino uint64, how *unix.OpenHow) (int, error) {
	names, err := readDirNames(".")
	if err != nil {
		return -1, fmt.Errorf("finding the stage in its parent directory: %w", err)
	}
	for _, n := range names {
		fd, err := unix.Openat2(unix.AT_FDCWD, n, how)
		if err != nil {
			continue
		}
		if sameDir(fd, dev, ino) {
			return fd, nil
		}
		unix.Close(fd)
	}
	return -1, errors.New("the stage is no longer in its parent directory: not entering it")
}

// readDirNames lists the directory at path.
func readDirNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// virtual mounts proc, /sys, /dev and its entries, /run and /tmp in the
// stage, lends it the host's resolv.conf and writes its policy-rc.d.
func (s *stageFS) virtual(pre *prepared) error {
	if err := s.mountOn(pre.proc, "/proc", true); err != nil {
		return fmt.Errorf("mounting proc: %w", err)
	}
	if err := s.mountOn(pre.sys, "/sys", true); err != nil {
		return fmt.Errorf("mounting sysfs: %w", err)
	}
	if err := s.dev(pre); err != nil {
		return err
	}
	nosuidNodev := unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	if err := s.tmpfs("/run", map[string]string{"mode": "755"}, nosuidNodev); err != nil {
		return err
	}
	if err := s.modeDir("/run/lock", os.ModeSticky|0o777); err != nil {
		return err
	}
	if err := s.tmpfs("/tmp", map[string]string{"mode": "1777"}, nosuidNodev); err != nil {
		return err
	}
	if pre.resolv != nil {
		if err := s.lendResolv(pre.resolv); err != nil {
			return err
		}
	}
	return s.policy()
}

// dev mounts a tmpfs on /dev with the host's harmless nodes, a devpts of
// the namespace's own, a tmpfs /dev/shm and the usual links.
func (s *stageFS) dev(pre *prepared) error {
	if err := s.tmpfs("/dev", map[string]string{"mode": "755", "size": "4m"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err != nil {
		return err
	}
	for _, n := range devNodes {
		if fd, ok := pre.dev[n]; ok {
			if err := s.mountOn(fd, "/dev/"+n, false); err != nil {
				return err
			}
		}
	}
	const ptsAttrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC
	opts := map[string]string{"ptmxmode": "0666", "mode": "0620", "gid": "5"}
	pts, err := newMount("devpts", opts, ptsAttrs)
	if err != nil {
		delete(opts, "gid") // gid 5 may be unmapped
		pts, err = newMount("devpts", opts, ptsAttrs)
	}
	if err != nil {
		return fmt.Errorf("mounting devpts on /dev/pts: %w", err)
	}
	err = s.mountOn(pts, "/dev/pts", true)
	unix.Close(pts)
	if err != nil {
		return err
	}
	dev, err := s.resolve("/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return resolveErr("/dev", err)
	}
	defer unix.Close(dev)
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := unix.Symlinkat(target, dev, name); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", name, err)
		}
	}
	return s.tmpfs("/dev/shm", map[string]string{"mode": "1777"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
}

// modeDir makes the directory p (on a tmpfs of the namespace) and gives it
// mode exactly (the umask applies to mkdir; chmod sets the sticky bit too).
func (s *stageFS) modeDir(p string, mode os.FileMode) error {
	fd, err := s.ensure(p, true)
	if err != nil {
		return err
	}
	unix.Close(fd)
	fd, err = s.resolve(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return resolveErr(p, err)
	}
	defer unix.Close(fd)
	m := uint32(mode.Perm())
	if mode&os.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	if err := unix.Fchmod(fd, m); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	return nil
}
