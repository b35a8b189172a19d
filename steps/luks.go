package steps

// luksKind is vmdb2 0.26's `luks` step: `cryptsetup` the tag to encrypt,
// `tag` the cleartext's tag, the passphrase from `key-file` or `key-cmd`.
// It runs as the cryptsetup step does; unlike vmdb2 0.26 the fstab step
// writes its crypttab line too.
var luksKind = &Kind{
	Name:        "luks",
	Primary:     "cryptsetup",
	Summary:     "encrypt a partition with LUKS2 using a key file or key command",
	Implemented: true,
	Check:       checkCryptsetup,
	Keys: []Key{
		{Name: "cryptsetup", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Required: true},
		{Name: "key-file", Type: TStr, Default: ""},
		{Name: "key-cmd", Type: TStr, Default: ""},
		{Name: "options", Type: TStr, Default: ""},
	},
	Run:      func(b *Build, s *Step) error { return b.openLUKS(s, s.Str("tag")) },
	Teardown: func(b *Build, s *Step) error { return b.closeLUKS(s.Str("tag")) },
}
