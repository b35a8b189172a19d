package steps

// vgcreateKind describes the `vgcreate` step: create an LVM volume group.
// Running it is not implemented yet; planning and --dry-run know its keys.
var vgcreateKind = &Kind{
	Name:    "vgcreate",
	Summary: "create an LVM volume group",
	Keys: []Key{
		{Name: "vgcreate", Type: TStr, Required: true},
		{Name: "physical", Type: TList, Default: []string{}},
	},
}
