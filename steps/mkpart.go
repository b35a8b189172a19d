package steps

// mkpartKind describes the `mkpart` step: add a partition.
// Running it is not implemented yet; planning and --dry-run know its keys.
var mkpartKind = &Kind{
	Name:    "mkpart",
	Summary: "add a partition",
	Keys: []Key{
		{Name: "mkpart", Type: TStr, Required: true},
		{Name: "device", Type: TStr, Required: true},
		{Name: "start", Type: TStr, Required: true},
		{Name: "end", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Default: ""},
		{Name: "part-tag", Type: TStr, Default: ""},
		{Name: "fs-type", Type: TStr, Default: "ext2"},
	},
}
