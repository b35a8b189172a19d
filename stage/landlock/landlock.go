// Package landlock runs a command confined, with everything it starts, so
// that it can change the filesystem only beneath one directory: the Landlock LSM's path-beneath rule over every write access
// right the running kernel knows (making, removing, renaming, truncating
// and writing files, directories, links and device nodes). Reading and
// executing stay allowed everywhere, and so does writing to /dev/null.
//
// It is for tools that unpack content as hostile as an image's (debugfs
// rdump, mcopy): whatever names or symbolic links that content holds, the
// kernel refuses any write that resolves outside the directory. Landlock
// does not cover changes of owner, mode or times; the callers make those
// themselves through the stage's confined operations.
package landlock

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rulesetAttr is struct landlock_ruleset_attr as of ABI 1 (the kernel
// accepts a shorter struct than it knows).
type rulesetAttr struct {
	handledAccessFS uint64
}

// pathBeneathAttr is struct landlock_path_beneath_attr (packed).
type pathBeneathAttr struct {
	allowedAccess uint64
	parentFd      int32
}

// writeRights are the write access rights, with the ABI version that
// introduced each.
var writeRights = []struct {
	abi    int
	rights uint64
}{
	{1, unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM},
	{2, unix.LANDLOCK_ACCESS_FS_REFER},
	{3, unix.LANDLOCK_ACCESS_FS_TRUNCATE},
	{5, unix.LANDLOCK_ACCESS_FS_IOCTL_DEV},
}

// ABI returns the Landlock ABI version of the running kernel, or an error
// saying why Landlock cannot be used.
func ABI() (int, error) {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		switch errno {
		case unix.ENOSYS:
			return 0, errors.New("this kernel has no Landlock (Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK is needed)")
		case unix.EOPNOTSUPP:
			return 0, errors.New("Landlock is not enabled on this kernel (add landlock to the lsm= boot parameter)")
		}
		return 0, fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	return int(v), nil
}

// Run runs cmd confined so that it writes only beneath dir. Landlock and
// no_new_privs apply to one thread and what it starts: the confinement is
// made on a goroutine locked to a fresh OS thread, which starts cmd and is
// then discarded with the goroutine (never unlocked), so the rest of the
// calling process stays as it was.
func Run(dir string, cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := restrictThread(dir); err != nil {
			done <- err
			return
		}
		done <- cmd.Run()
	}()
	return <-done
}

// restrictThread confines the calling thread (and what it starts) so that
// writes are allowed only beneath dir.
func restrictThread(dir string) error {
	abi, err := ABI()
	if err != nil {
		return err
	}
	var handled uint64
	for _, r := range writeRights {
		if abi >= r.abi {
			handled |= r.rights
		}
	}
	attr := rulesetAttr{handledAccessFS: handled}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	if err := allow(int(fd), dir, unix.O_DIRECTORY, handled); err != nil {
		return err
	}
	// Discarded output (os/exec's nil streams) is opened after this.
	devNull := handled & (unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV)
	if err := allow(int(fd), os.DevNull, 0, devNull); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}

// allow adds the rule that rights are allowed beneath path.
func allow(ruleset int, path string, flags int, rights uint64) error {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return fmt.Errorf("landlock: opening %s: %w", path, err)
	}
	defer unix.Close(pfd)
	rule := pathBeneathAttr{allowedAccess: rights, parentFd: int32(pfd)}
	if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_add_rule %s: %w", path, errno)
	}
	return nil
}
