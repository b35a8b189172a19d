package steps

// luksKind describes the `luks` step: encrypt a partition with LUKS2 using a key file or key command.
// Running it is not implemented yet; planning and --dry-run know its keys.
var luksKind = &Kind{
	Name:    "luks",
	Primary: "cryptsetup",
	Summary: "encrypt a partition with LUKS2 using a key file or key command",
	Check:   checkLuks,
	Keys: []Key{
		{Name: "cryptsetup", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Required: true},
		{Name: "key-file", Type: TStr, Default: ""},
		{Name: "key-cmd", Type: TStr, Default: ""},
	},
}
