package steps

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmdb2-go/vmdb2/fs"
	"github.com/vmdb2-go/vmdb2/stage"
)

// mountKind binds a tag to a directory of the stage instead of mounting
// anything: without `dirname` a fresh directory that is the filesystem's
// root (target mount point /), with `dirname` and `mount-on` a directory
// inside the parent tag's tree. Its teardown builds the filesystem from
// that directory (without its /etc/resolv.conf unless keep_resolvconf, as
// in vmdb2 0.41: see dropResolvConf); a nested filesystem's content is then moved out of its
// parent's tree, so the parent gets just the empty mount point. A tag of
// an existing image (kpartx tags, lvscan) without mkfs gets its
// filesystem's files imported into the directory first (reuse.go).
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
		{Name: "keep_resolvconf", Type: TBool, Default: false},
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
			if tag.stageDir, err = st.NewFilesystemDir(); err != nil {
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
			if err := b.mountNested(tag, parent, s.Str("dirname")); err != nil {
				return err
			}
			tag.MountPoint = s.Str("dirname")
		}
		tag.Mounted = true
		dir, err := b.tagDir(tag)
		if err != nil {
			return err
		}
		b.Detail("tag %s: staging directory %s, mount point %s", tag.Name, dir, tag.MountPoint)
		if tag.Reused && tag.FSType == "" {
			return b.importFilesystem(tag, dir)
		}
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
		dir, err := b.tagDir(tag)
		if err != nil {
			return err
		}
		if !s.Bool("keep_resolvconf") && !b.compat026() {
			if err := dropResolvConf(dir); err != nil {
				return err
			}
		}
		if err := b.buildFilesystem(tag, dir); err != nil {
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
			// Checked again: building the filesystem ran no step's code,
			// but the move must not follow anything either.
			if dir, err = b.tagDir(tag); err != nil {
				return err
			}
			return b.FileOp(stage.FileOp{Op: "move-contents", Root: dir, Src: trash})
		}
		return nil
	},
}

// dropResolvConf removes the tree's /etc/resolv.conf before its filesystem
// is built, as vmdb2 0.40+'s mount teardown does unless keep_resolvconf:
// the build host's resolver (debootstrap's copy) does not belong in the
// image. As there (Python's os.path.exists), a link whose target is missing
// (systemd-resolved's link into /run) stays; here the link is followed
// inside the image, never on the host.
func dropResolvConf(dir string) error {
	r, err := stage.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	const p = "/etc/resolv.conf"
	if !r.Exists(p) {
		return nil
	}
	if err := r.Remove(p); err != nil {
		return fmt.Errorf("removing the build's /etc/resolv.conf from the image (keep_resolvconf: true keeps it): %w", err)
	}
	return nil
}
