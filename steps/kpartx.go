package steps

// kpartxKind describes the `kpartx` step: make the image's partitions usable by tag.
// Running it is not implemented yet; planning and --dry-run know its keys.
var kpartxKind = &Kind{
	Name:    "kpartx",
	Summary: "make the image's partitions usable by tag",
	Keys: []Key{
		{Name: "kpartx", Type: TStr, Required: true},
	},
}
