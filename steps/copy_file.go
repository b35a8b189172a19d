package steps

import "github.com/vmdb2-go/vmdb2/stage"

// copyFileKind copies a host file (relative to the current directory) into
// the image; missing parent directories are created 0755, root-owned
// (vmdb2 gives the last one mode 0511, a bug).
var copyFileKind = &Kind{
	Name:        "copy-file",
	Summary:     "copy a host file into the target",
	Implemented: true,
	Check:       checkFileStep,
	Keys: []Key{
		{Name: "copy-file", Type: TStr, Required: true},
		{Name: "src", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o644},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
	},
	Run: func(b *Build, s *Step) error {
		root, err := b.rootTree()
		if err != nil {
			return err
		}
		src, err := hostPath(s.Str("src"))
		if err != nil {
			return err
		}
		return b.FileOp(stage.FileOp{Op: "copy-file", Root: root, Path: s.Str("copy-file"), Src: src,
			Perm: s.Int("perm"), UID: int(s.Int("uid")), GID: int(s.Int("gid"))})
	},
}
