package steps

import "github.com/vmdb2-go/vmdb2/stage"

// copyDirKind copies a host directory tree into the image with vmdb2's
// rules for modes (source mode minus umask), owners (uid/gid, or user/group
// names looked up in the image) and existing directories (left alone).
var copyDirKind = &Kind{
	Name:        "copy-dir",
	Summary:     "copy a host directory tree into the target",
	Implemented: true,
	Check:       checkFileStep,
	Keys: []Key{
		{Name: "copy-dir", Type: TStr, Required: true},
		{Name: "src", Type: TStr, Required: true},
		{Name: "perm", Type: TInt, Default: 0o755},
		{Name: "umask", Type: TInt, Default: 0o022},
		{Name: "uid", Type: TInt, Default: 0},
		{Name: "gid", Type: TInt, Default: 0},
		{Name: "user", Type: TStr, Default: ""},
		{Name: "group", Type: TStr, Default: ""},
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
		b.Progress("Copying dir %s to %s, uid %d, gid %d, umask %o", s.Str("src"), s.Str("copy-dir"), s.Int("uid"), s.Int("gid"), s.Int("umask"))
		return b.FileOp(stage.FileOp{Op: "copy-dir", Root: root, Path: s.Str("copy-dir"), Src: src,
			Perm: s.Int("perm"), Umask: s.Int("umask"), UID: int(s.Int("uid")), GID: int(s.Int("gid")),
			User: s.Str("user"), Group: s.Str("group")})
	},
}
