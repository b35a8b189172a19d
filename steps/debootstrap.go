package steps

// debootstrapKind describes the `debootstrap` step: install a Debian base system into the target.
// Running it is not implemented yet; planning and --dry-run know its keys.
var debootstrapKind = &Kind{
	Name:    "debootstrap",
	Summary: "install a Debian base system into the target",
	Check:   checkDebootstrap,
	Keys: []Key{
		{Name: "debootstrap", Type: TStr, Required: true},
		{Name: "target", Type: TStr, Required: true},
		{Name: "mirror", Type: TStr, Required: true},
		{Name: "arch", Type: TStr, Default: ""},
		{Name: "keyring", Type: TStr, Default: ""},
		{Name: "install_keyring", Type: TBool, Default: false},
		{Name: "variant", Type: TStr, Default: "-"},
		{Name: "components", Type: TList, Default: []string{"main"}},
		{Name: "include", Type: TList, Default: []string{}},
		{Name: "require_empty_target", Type: TBool, Default: true},
	},
}
