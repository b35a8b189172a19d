package userns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	RegisterHelper(helperProbe, func([]string) error {
		if os.Getuid() != 0 {
			return fmt.Errorf("uid inside the namespace is %d, not 0", os.Getuid())
		}
		return nil
	})
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
