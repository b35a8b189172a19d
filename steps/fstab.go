package steps

// fstabKind describes the `fstab` step: write /etc/fstab for the mounted filesystems.
// Running it is not implemented yet; planning and --dry-run know its keys.
var fstabKind = &Kind{
	Name:    "fstab",
	Summary: "write /etc/fstab for the mounted filesystems",
	Keys: []Key{
		{Name: "fstab", Type: TStr, Required: true},
	},
}
