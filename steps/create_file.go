package steps

import (
	"strings"

	"github.com/vmdb2-go/vmdb2/stage"
)

// createFileKind writes a file with the given contents into the image. As
// in vmdb2, templating drops the final newline of `contents`; the later
// vmdb2 key `trailing-newline` (true) keeps it.
var createFileKind = &Kind{
	Name:        "create-file",
	Summary:     "create a file with the given contents in the target",
	Implemented: true,
	Check:       checkFileStep,
	Keys: []Key{
		{Name: "create-file", Type: TStr, Required: true},
		{Name: "contents", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o644},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
		{Name: "trailing-newline", Type: TScalar, Default: "", Legacy: "a later vmdb2's key; honoured here: a true value (1, yes, true) keeps the final newline of `contents`, which vmdb2 0.26 always drops"},
	},
	Run: func(b *Build, s *Step) error {
		root, err := b.rootTree()
		if err != nil {
			return err
		}
		contents := s.Str("contents")
		if truthy(s.vals["trailing-newline"]) && s.vals["contents"].DroppedNewline {
			contents += "\n"
		}
		return b.FileOp(stage.FileOp{Op: "create-file", Root: root, Path: s.Str("create-file"), Contents: []byte(contents),
			Perm: s.Int("perm"), UID: int(s.Int("uid")), GID: int(s.Int("gid"))})
	},
}

// truthy reads a yes/no-ish scalar: true, a non-zero integer, or a string
// such as "1", "yes", "true", "on".
func truthy(v *Value) bool {
	if v == nil {
		return false
	}
	switch v.Kind {
	case Bool:
		return v.Bool
	case Int:
		return v.Int != 0
	case String:
		switch strings.ToLower(strings.TrimSpace(v.Str)) {
		case "1", "yes", "true", "on", "y":
			return true
		}
	}
	return false
}
