package steps

// cryptsetupKind describes the `cryptsetup` step: encrypt a partition with LUKS using a password.
// Running it is not implemented yet; planning and --dry-run know its keys.
var cryptsetupKind = &Kind{
	Name:    "cryptsetup",
	Summary: "encrypt a partition with LUKS using a password",
	Keys: []Key{
		{Name: "cryptsetup", Type: TStr, Required: true},
		{Name: "password", Type: TStr, Required: true},
		{Name: "name", Type: TStr, Required: true},
	},
}
