package steps

import "github.com/vmdb2-go/vmdb2/stage"

// createDirKind creates a directory in the image (like `mkdir -p`, then
// owner and mode on the last component; vmdb2 fails when it exists).
var createDirKind = &Kind{
	Name:        "create-dir",
	Summary:     "create a directory in the target",
	Implemented: true,
	Check:       checkFileStep,
	Keys: []Key{
		{Name: "create-dir", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o755},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
	},
	Run: func(b *Build, s *Step) error {
		root, err := b.rootTree()
		if err != nil {
			return err
		}
		return b.FileOp(stage.FileOp{Op: "create-dir", Root: root, Path: s.Str("create-dir"),
			Perm: s.Int("perm"), UID: int(s.Int("uid")), GID: int(s.Int("gid"))})
	},
}
