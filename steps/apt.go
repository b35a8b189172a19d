package steps

// aptKind describes the `apt` step: install packages with apt-get inside the target.
// Running it is not implemented yet; planning and --dry-run know its keys.
var aptKind = &Kind{
	Name:    "apt",
	Summary: "install packages with apt-get inside the target",
	Check:   checkApt,
	Keys: []Key{
		{Name: "apt", Type: TStr, Required: true},
		{Name: "packages", Type: TList, Default: []string{}},
		{Name: "tag", Type: TStr, Default: ""},
		{Name: "fs-tag", Type: TStr, Default: ""},
		{Name: "recommends", Type: TBool, Default: true},
		{Name: "clean", Type: TBool, Default: true},
	},
}
