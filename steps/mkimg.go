package steps

// mkimgKind describes the `mkimg` step: create the image file.
// Running it is not implemented yet; planning and --dry-run know its keys.
var mkimgKind = &Kind{
	Name:    "mkimg",
	Summary: "create the image file",
	Keys: []Key{
		{Name: "mkimg", Type: TStr, Required: true},
		{Name: "size", Type: TStr, Required: true},
	},
}
