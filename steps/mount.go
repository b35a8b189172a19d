package steps

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs"
	"github.com/vmdb2-go/vmdb2/stage"
)

// mountKind binds a tag to a directory of the stage instead of mounting
// anything: without `dirname` a fresh directory that is the filesystem's
// root (target mount point /), with `dirname` and `mount-on` a directory
// inside the parent tag's tree. Its teardown builds the filesystem from
// that directory; a nested filesystem's content is then moved out of its
// parent's tree, so the parent gets just the empty mount point.
var mountKind = &Kind{
	Name:        "mount",
	Summary:     "mount a filesystem (here: bind its tag to a staging directory)",
	Implemented: true,
	Check:       checkMount,
	Keys: []Key{
		{Name: "mount", Type: TStr, Required: true},
		{Name: "dirname", Type: TStr, Default: ""},
		{Name: "mount-on", Type: TStr, Default: ""},
		{Name: "zerofree", Type: TBool, Default: true},
		{Name: "fs-tag", Type: TStr, Default: "", Legacy: "vmdb2 0.13's separate name for the filesystem; here it becomes another name of the mounted tag, so later steps may use either"},
	},
	Run: func(b *Build, s *Step) error {
		tag, err := b.State.Tags.Get(s.Str("mount"))
		if err != nil {
			return err
		}
		if tag.Mounted {
			return fmt.Errorf("Already mounted tag: %s", tag.Name)
		}
		if tag.FSType != "" && !fs.HoldsFiles(tag.FSType) {
			return fmt.Errorf("tag %s holds %s, which cannot be mounted", tag.Name, tag.FSType)
		}
		if alias := s.Str("fs-tag"); alias != "" && alias != tag.Name {
			if _, err := b.State.Tags.Get(alias); err == nil {
				return fmt.Errorf("fs-tag %s: Tag already used: %s", alias, alias)
			}
			tag.Aliases = append(tag.Aliases, alias)
		}
		st, err := b.Stage()
		if err != nil {
			return err
		}
		if s.Str("dirname") == "" {
			if tag.Dir, err = st.NewFilesystemDir(); err != nil {
				return err
			}
			tag.MountPoint = "/"
		} else {
			parent, err := b.State.Tags.Get(s.Str("mount-on"))
			if err != nil {
				return fmt.Errorf("mount-on: %w", err)
			}
			if !parent.Mounted {
				return fmt.Errorf("mount-on: tag %s is not mounted", parent.Name)
			}
			target := path.Clean("/" + s.Str("dirname"))
			if err := b.FileOp(stage.FileOp{Op: "create-dir", Root: parent.Dir, Path: target, Perm: 0o755}); err != nil {
				return err
			}
			// The directory was created confined to the parent's tree; its
			// host path is the parent's directory plus the cleaned path
			// (a symlink on the way would have made the create fail or stay
			// inside, and it cannot be replaced later by a step in between
			// without breaking the build visibly).
			tag.Dir = filepath.Join(parent.Dir, filepath.FromSlash(strings.TrimPrefix(target, "/")))
			tag.MountPoint = s.Str("dirname")
			tag.MountOn = parent.Name
		}
		tag.Mounted = true
		b.Detail("tag %s: staging directory %s, mount point %s", tag.Name, tag.Dir, tag.MountPoint)
		return nil
	},
	Teardown: func(b *Build, s *Step) error {
		tag, err := b.State.Tags.Get(s.Str("mount"))
		if err != nil || !tag.Mounted || b.Failed() {
			return nil
		}
		if tag.FSType == "" {
			return fmt.Errorf("tag %s was mounted but has no filesystem: add a `mkfs` step for it", tag.Name)
		}
		if err := b.buildFilesystem(tag, tag.Dir); err != nil {
			return err
		}
		if tag.MountOn != "" {
			// Keep the nested filesystem's files out of the parent's.
			st, err := b.Stage()
			if err != nil {
				return err
			}
			trash, err := os.MkdirTemp(filepath.Join(st.Dir, "trash"), "nested-")
			if err != nil {
				return err
			}
			return b.FileOp(stage.FileOp{Op: "move-contents", Root: tag.Dir, Src: trash})
		}
		return nil
	},
}
