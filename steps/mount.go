package steps

// mountKind describes the `mount` step: mount a filesystem (here: bind its tag to a staging directory).
// Running it is not implemented yet; planning and --dry-run know its keys.
var mountKind = &Kind{
	Name:    "mount",
	Summary: "mount a filesystem (here: bind its tag to a staging directory)",
	Check:   checkMount,
	Keys: []Key{
		{Name: "mount", Type: TStr, Required: true},
		{Name: "dirname", Type: TStr, Default: ""},
		{Name: "mount-on", Type: TStr, Default: ""},
		{Name: "zerofree", Type: TBool, Default: true},
		{Name: "fs-tag", Type: TStr, Default: "", Legacy: "vmdb2 0.13's separate name for the filesystem; here it becomes another name of the mounted tag, so later steps may use either"},
	},
}
