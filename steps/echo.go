package steps

// echoKind is vmdb2's `echo` test step: it prints its text as progress and
// its `teardown` text when torn down.
var echoKind = &Kind{
	Name:        "echo",
	Summary:     "print a message (and another at teardown); for testing",
	Implemented: true,
	Keys: []Key{
		{Name: "echo", Type: TStr, Required: true},
		{Name: "teardown", Type: TStr, Default: ""},
	},
	Run: func(b *Build, s *Step) error {
		b.Progress("%s", s.Str("echo"))
		return nil
	},
	Teardown: func(b *Build, s *Step) error {
		if t := s.Str("teardown"); t != "" {
			b.Progress("%s", t)
		}
		return nil
	},
}
