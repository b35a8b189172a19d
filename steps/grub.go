package steps

// grubKind describes the `grub` step: install the GRUB boot loader (bios, uefi or ieee1275).
// Running it is not implemented yet; planning and --dry-run know its keys.
var grubKind = &Kind{
	Name:    "grub",
	Summary: "install the GRUB boot loader (bios, uefi or ieee1275)",
	Check:   checkGrub,
	Keys: []Key{
		{Name: "grub", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Default: ""},
		{Name: "root-fs", Type: TStr, Default: ""},
		{Name: "efi", Type: TStr, Default: ""},
		{Name: "efi-part", Type: TStr, Default: ""},
		{Name: "prep", Type: TStr, Default: ""},
		{Name: "console", Type: TStr, Default: ""},
		{Name: "image-dev", Type: TStr, Default: ""},
		{Name: "quiet", Type: TBool, Default: false},
		{Name: "timeout", Type: TInt, Default: 0},
		{Name: "rootfs", Type: TStr, Default: "", Legacy: "vmdb2 0.13's name of `tag`; used as `tag` when `tag` and `root-fs` are not given"},
	},
}
