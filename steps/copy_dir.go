package steps

// copyDirKind describes the `copy-dir` step: copy a host directory tree into the target.
// Running it is not implemented yet; planning and --dry-run know its keys.
var copyDirKind = &Kind{
	Name:    "copy-dir",
	Summary: "copy a host directory tree into the target",
	Check:   checkModes,
	Keys: []Key{
		{Name: "copy-dir", Type: TStr, Required: true},
		{Name: "src", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o755},
		{Name: "umask", Type: TInt, Default: 0o022},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
		{Name: "user", Type: TStr, Default: ""},
		{Name: "group", Type: TStr, Default: ""},
	},
}
