package steps

// createFileKind describes the `create-file` step: create a file with the given contents in the target.
// Running it is not implemented yet; planning and --dry-run know its keys.
var createFileKind = &Kind{
	Name:    "create-file",
	Summary: "create a file with the given contents in the target",
	Check:   checkModes,
	Keys: []Key{
		{Name: "create-file", Type: TStr, Required: true},
		{Name: "contents", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o644},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
		{Name: "trailing-newline", Type: TScalar, Default: "", Legacy: "a later vmdb2's key; honoured here: a true value (1, yes, true) keeps the final newline of `contents`, which vmdb2 0.26 always drops"},
	},
}
