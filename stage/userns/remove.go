package userns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Names of the helpers this package registers for itself.
const (
	helperRemoveAll = "userns.removeall"
	helperProbe     = "userns.probe"
)

func init() {
	RegisterHelper(helperRemoveAll, func(args []string) error {
		if len(args) != 1 {
			return errors.New("usage: userns.removeall PATH")
		}
		return os.RemoveAll(args[0])
	})
	RegisterHelper(helperProbe, probeNamespace)
}

// procMasked starts the trial namespace's error when it cannot mount a
// proc of its own.
const procMasked = "cannot mount a proc filesystem"

// probeNamespace is the trial namespace of Available: uid 0, and a proc of
// its own mounted over /proc (in its private mount namespace), which every
// command run in a stage needs. The kernel refuses that mount in a user
// namespace when the only proc it could reveal has locked mounts over
// parts of it, as container runtimes' masked /proc paths are.
func probeNamespace([]string) error {
	if os.Getuid() != 0 {
		return fmt.Errorf("uid inside the namespace is %d, not 0", os.Getuid())
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("%s: %w", procMasked, err)
	}
	return unix.Unmount("/proc", unix.MNT_DETACH)
}

// RemoveAll removes path and everything below it, like os.RemoveAll, also
// when the tree holds files owned by mapped ids that the calling user cannot
// delete on the host (a stage after debootstrap): an ordinary user first
// tries os.RemoveAll and, if that fails, removes the rest as root inside a
// namespace. It needs [Init] for that second step. Files owned by ids outside
// the mapping cannot be removed that way either.
func RemoveAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		return fmt.Errorf("userns: removing %s: %w", path, aerr)
	}
	if rerr := Run(context.Background(), Cmd{Helper: helperRemoveAll, HelperArgs: []string{abs}, Dir: "/"}); rerr != nil {
		return fmt.Errorf("userns: removing %s: %w (inside the namespace: %v)", path, err, rerr)
	}
	return nil
}
