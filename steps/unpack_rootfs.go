package steps

// unpackRootfsKind describes the `unpack-rootfs` step: unpack the --rootfs-tarball cache, if it exists.
// Running it is not implemented yet; planning and --dry-run know its keys.
var unpackRootfsKind = &Kind{
	Name:    "unpack-rootfs",
	Summary: "unpack the --rootfs-tarball cache, if it exists",
	Keys: []Key{
		{Name: "unpack-rootfs", Type: TStr, Required: true},
	},
}
