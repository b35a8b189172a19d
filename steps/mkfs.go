package steps

// mkfsKind describes the `mkfs` step: make a filesystem on a partition.
// Running it is not implemented yet; planning and --dry-run know its keys.
var mkfsKind = &Kind{
	Name:    "mkfs",
	Summary: "make a filesystem on a partition",
	Keys: []Key{
		{Name: "mkfs", Type: TStr, Required: true},
		{Name: "partition", Type: TStr, Required: true},
		{Name: "label", Type: TStr, Default: ""},
		{Name: "options", Type: TStr, Default: ""},
	},
}
