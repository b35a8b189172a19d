package steps

// createDirKind describes the `create-dir` step: create a directory in the target.
// Running it is not implemented yet; planning and --dry-run know its keys.
var createDirKind = &Kind{
	Name:    "create-dir",
	Summary: "create a directory in the target",
	Check:   checkModes,
	Keys: []Key{
		{Name: "create-dir", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o755},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
	},
}
