package steps

// setPartFlagKind describes the `set_part_flag` step: set or clear a partition flag.
// Running it is not implemented yet; planning and --dry-run know its keys.
var setPartFlagKind = &Kind{
	Name:    "set_part_flag",
	Summary: "set or clear a partition flag",
	Check:   checkPartFlag,
	Keys: []Key{
		{Name: "set_part_flag", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Required: true},
		{Name: "flag", Type: TStr, Required: true},
		{Name: "state", Type: TStr, Default: "enabled"},
	},
}
