package steps

// shellKind describes the `shell` step: run a shell snippet on the host with ROOT set to the root filesystem.
// Running it is not implemented yet; planning and --dry-run know its keys.
var shellKind = &Kind{
	Name:    "shell",
	Summary: "run a shell snippet on the host with ROOT set to the root filesystem",
	Keys: []Key{
		{Name: "shell", Type: TStr, Required: true},
		{Name: "root-fs", Type: TStr, Required: true},
	},
}
