package steps

import (
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// chrootKind runs `sh -ec SHELL` inside the target, confined to the tag's
// tree in the build's user namespace, with /proc, /dev, /sys, /run and /tmp
// mounted inside the namespace only (vmdb2 mounts them only after a
// `virtual-filesystems` step; here they are always there, and nothing
// is ever mounted on the host).
var chrootKind = &Kind{
	Name:        "chroot",
	Summary:     "run a shell snippet inside the target",
	Implemented: true,
	Keys: []Key{
		{Name: "chroot", Type: TStr, Required: true},
		{Name: "shell", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		_, dir, err := b.mountedTree(s.Str("chroot"))
		if err != nil {
			return err
		}
		return b.InNamespace(userns.Cmd{
			Root:    dir,
			Argv:    []string{"sh", "-ec", s.Str("shell")},
			Env:     append(targetEnv(), b.proxyEnv()...),
			Virtual: true,
		})
	},
}

// targetEnv is the environment of commands run inside the target: a clean
// one, not the host's (whose PATH and locale may not exist there).
func targetEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"TERM=dumb",
		"DEBIAN_FRONTEND=noninteractive",
	}
}
