package steps

// lvcreateKind describes the `lvcreate` step: create an LVM logical volume.
// Running it is not implemented yet; planning and --dry-run know its keys.
var lvcreateKind = &Kind{
	Name:    "lvcreate",
	Summary: "create an LVM logical volume",
	Keys: []Key{
		{Name: "lvcreate", Type: TStr, Required: true},
		{Name: "name", Type: TStr, Required: true},
		{Name: "size", Type: TStr, Required: true},
	},
}
