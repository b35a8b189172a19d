package steps

import (
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
)

// qemuDebootstrapKind is debootstrap for a foreign architecture, which needs
// the host's qemu-user-static binfmt handlers (checked before anything
// starts). Like vmdb2 it runs `apt-get update` in the target afterwards,
// also when skipped (once, where vmdb2 runs it twice).
var qemuDebootstrapKind = &Kind{
	Name:        "qemu-debootstrap",
	Summary:     "install a Debian base system of a foreign architecture",
	Implemented: true,
	Check:       checkDebootstrap,
	Keys: []Key{
		{Name: "qemu-debootstrap", Type: TStr, Required: true},
		{Name: "target", Type: TStr, Required: true},
		{Name: "mirror", Type: TStr, Required: true},
		{Name: "arch", Type: TStr, Required: true},
		{Name: "keyring", Type: TStr, Default: ""},
		{Name: "variant", Type: TStr, Default: "-"},
		{Name: "components", Type: TList, Default: []string{"main"}},
	},
	Run: func(b *Build, s *Step) error {
		// vmdb2 checks for an empty target only in debootstrap.
		return b.bootstrap(s, s.Str("qemu-debootstrap"), false, nil, false)
	},
	RunEvenIfSkipped: func(b *Build, s *Step) error {
		b.State.Arch = s.Str("arch")
		_, dir, err := b.mountedTree(s.Str("target"))
		if err != nil {
			return err
		}
		return bootstrap.AptUpdate(b.ctx, bootstrap.AptOptions{Root: dir, Run: b.nsRun, Progress: b.progressFunc(), Env: b.buildEnv(), Updates: &b.aptUpdates})
	},
}
