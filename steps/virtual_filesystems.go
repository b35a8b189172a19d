package steps

// virtualFilesystemsKind describes the `virtual-filesystems` step: mount /proc, /dev, /sys and friends for later chroot steps.
// Running it is not implemented yet; planning and --dry-run know its keys.
var virtualFilesystemsKind = &Kind{
	Name:        "virtual-filesystems",
	Summary:     "mount /proc, /dev, /sys and friends for later chroot steps",
	LegacyNames: []string{"mount-virtual-filesystems", "virtual-filesystem"},
	Keys: []Key{
		{Name: "virtual-filesystems", Type: TStr, Required: true},
	},
}
