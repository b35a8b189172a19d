package steps

// resizeRootfsKind describes the `resize-rootfs` step: grow the root partition and filesystem on first boot.
// Running it is not implemented yet; planning and --dry-run know its keys.
var resizeRootfsKind = &Kind{
	Name:    "resize-rootfs",
	Summary: "grow the root partition and filesystem on first boot",
	Keys: []Key{
		{Name: "resize-rootfs", Type: TStr, Required: true},
	},
}
