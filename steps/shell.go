package steps

import (
	"os"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// shellKind runs `sh -ec SHELL` on the host with ROOT set to the root
// filesystem's staging directory, as vmdb2 does. It runs as root of the
// build's user namespace without confinement, so it sees the host's files
// and can change the stage as root would (`install -o root`, `chroot
// "$ROOT" ...`), yet cannot gain any real privilege on the host.
var shellKind = &Kind{
	Name:        "shell",
	Summary:     "run a shell snippet on the host with ROOT set to the root filesystem",
	Implemented: true,
	Keys: []Key{
		{Name: "shell", Type: TStr, Required: true},
		{Name: "root-fs", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		_, dir, err := b.mountedTree(s.Str("root-fs"))
		if err != nil {
			return err
		}
		// Mounts it makes in the tree stay for the later steps, as on
		// vmdb2's host (treemounts.go).
		return b.InNamespace(userns.Cmd{
			Argv:       []string{"sh", "-ec", s.Str("shell")},
			Env:        append(os.Environ(), "ROOT="+dir),
			Tree:       dir,
			KeepMounts: true,
		})
	},
}
