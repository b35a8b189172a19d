package steps

// virtualFilesystemsKind is accepted for compatibility: /proc, /dev,
// /dev/pts, /dev/shm, /run, /run/lock and /sys are mounted inside the build's
// user namespace for every command that runs in the target, so there is
// nothing to mount on the host. The step checks its tag and sets vmdb2's
// `virtuals` state flag.
var virtualFilesystemsKind = &Kind{
	Name:        "virtual-filesystems",
	Summary:     "mount /proc, /dev, /sys and friends for later chroot steps (always done here, inside the namespace)",
	Implemented: true,
	LegacyNames: []string{"mount-virtual-filesystems", "virtual-filesystem"},
	Keys: []Key{
		{Name: "virtual-filesystems", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		if _, err := b.mountedTag(s.Str("virtual-filesystems")); err != nil {
			return err
		}
		b.State.SetFlag("virtuals")
		return nil
	},
}
