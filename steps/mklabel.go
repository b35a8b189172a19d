package steps

// mklabelKind describes the `mklabel` step: write an empty partition table (msdos or gpt).
// Running it is not implemented yet; planning and --dry-run know its keys.
var mklabelKind = &Kind{
	Name:    "mklabel",
	Summary: "write an empty partition table (msdos or gpt)",
	Keys: []Key{
		{Name: "mklabel", Type: TStr, Required: true},
		{Name: "device", Type: TStr, Required: true},
	},
}
