package steps

// cacheRootfsKind describes the `cache-rootfs` step: save the root filesystem tree as the --rootfs-tarball cache.
// Running it is not implemented yet; planning and --dry-run know its keys.
var cacheRootfsKind = &Kind{
	Name:    "cache-rootfs",
	Summary: "save the root filesystem tree as the --rootfs-tarball cache",
	Keys: []Key{
		{Name: "cache-rootfs", Type: TStr, Required: true},
		{Name: "options", Type: TStr, Default: "--one-file-system"},
	},
}
