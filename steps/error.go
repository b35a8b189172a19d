package steps

import "errors"

// errorKind is vmdb2's `error` test step: it prints its text and fails;
// its teardown prints the `teardown` text (even when empty, as vmdb2 does).
var errorKind = &Kind{
	Name:        "error",
	Summary:     "print a message and fail; for testing teardowns",
	Implemented: true,
	Keys: []Key{
		{Name: "error", Type: TStr, Required: true},
		{Name: "teardown", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		b.Progress("%s", s.Str("error"))
		return errors.New("an error occurred")
	},
	Teardown: func(b *Build, s *Step) error {
		b.Progress("%s", s.Str("teardown"))
		return nil
	},
}
