package steps

// ansibleKind describes the `ansible` step: run an Ansible playbook against the root filesystem.
// Running it is not implemented yet; planning and --dry-run know its keys.
var ansibleKind = &Kind{
	Name:    "ansible",
	Summary: "run an Ansible playbook against the root filesystem",
	Keys: []Key{
		{Name: "ansible", Type: TStr, Required: true},
		{Name: "playbook", Type: TStr, Required: true},
		{Name: "group", Type: TStr, Default: "image"},
		{Name: "tags", Type: TStr, Default: "all"},
		{Name: "config_file", Type: TStr, Default: ""},
		{Name: "extra_vars", Type: TMap, Default: nil},
	},
}
