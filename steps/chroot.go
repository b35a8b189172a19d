package steps

// chrootKind describes the `chroot` step: run a shell snippet inside the target.
// Running it is not implemented yet; planning and --dry-run know its keys.
var chrootKind = &Kind{
	Name:    "chroot",
	Summary: "run a shell snippet inside the target",
	Keys: []Key{
		{Name: "chroot", Type: TStr, Required: true},
		{Name: "shell", Type: TStr, Required: true},
	},
}
