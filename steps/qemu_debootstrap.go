package steps

// qemuDebootstrapKind describes the `qemu-debootstrap` step: install a Debian base system of a foreign architecture.
// Running it is not implemented yet; planning and --dry-run know its keys.
var qemuDebootstrapKind = &Kind{
	Name:    "qemu-debootstrap",
	Summary: "install a Debian base system of a foreign architecture",
	Check:   checkDebootstrap,
	Keys: []Key{
		{Name: "qemu-debootstrap", Type: TStr, Required: true},
		{Name: "target", Type: TStr, Required: true},
		{Name: "mirror", Type: TStr, Required: true},
		{Name: "arch", Type: TStr, Required: true},
		{Name: "keyring", Type: TStr, Default: ""},
		{Name: "variant", Type: TStr, Default: "-"},
		{Name: "components", Type: TList, Default: []string{"main"}},
	},
}
