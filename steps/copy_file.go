package steps

// copyFileKind describes the `copy-file` step: copy a host file into the target.
// Running it is not implemented yet; planning and --dry-run know its keys.
var copyFileKind = &Kind{
	Name:    "copy-file",
	Summary: "copy a host file into the target",
	Check:   checkModes,
	Keys: []Key{
		{Name: "copy-file", Type: TStr, Required: true},
		{Name: "src", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o644},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
	},
}
