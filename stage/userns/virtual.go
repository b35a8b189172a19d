package userns

import (
	"errors"
	"fmt"
	"os"

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

// enterRoot makes the stage the namespace's root with pivot_root; the
// host's tree is then detached and unreachable from the namespace. The
// stage's path is resolved once, and must still lead to the directory Run
// opened (a component replaced in between would lead elsewhere); from
// then on only the descriptor is used.
func enterRoot(cfg *config) error {
	fd, err := unix.Open(cfg.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the stage %s: %w", cfg.Root, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("the stage %s: %w", cfg.Root, err)
	}
	if st.Dev != cfg.RootDev || st.Ino != cfg.RootIno {
		return fmt.Errorf("the stage %s was replaced while the namespace started (the path leads to another directory now): not entering it", cfg.Root)
	}
	// Make the stage a mount point of its own, to pivot into.
	mnt, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("bind-mounting the stage %s: %w", cfg.Root, err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind-mounting the stage %s: %w", cfg.Root, err)
	}
	if err := unix.Fchdir(mnt); err != nil {
		return fmt.Errorf("entering the stage: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", cfg.Root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's tree: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
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
