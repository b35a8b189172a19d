package steps

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage"
	"golang.org/x/sys/unix"
)

// The one rule for a tag's tree: its host path is never a host join of a
// spec path. A filesystem that is not nested is a directory the stage made
// (stage/fs/N). A nested one (`mount` with `dirname`/`mount-on`) is its
// `dirname` resolved inside its parent's tree by the kernel when it is
// mounted (openat2 RESOLVE_IN_ROOT: a symlink `boot -> /etc` in the image
// means the image's /etc, never the host's), recorded without symlinks,
// and checked again at every use (RESOLVE_NO_SYMLINKS), so a symlink that
// a later step plants on the way is refused instead of followed.

// hasTree reports whether tag has a staging tree (it was mounted, or the
// grub step gave an unmounted ESP one).
func (t *Tag) hasTree() bool { return t.stageDir != "" || t.inParent != "" }

// tagDir returns the host path of tag's tree, checked now.
func (b *Build) tagDir(tag *Tag) (string, error) {
	return b.tagDirDepth(tag, 0)
}

func (b *Build) tagDirDepth(tag *Tag, depth int) (string, error) {
	if depth > len(b.State.Tags.All()) {
		return "", fmt.Errorf("tag %s: its mounts form a loop", tag.Name)
	}
	if tag.stageDir != "" {
		fi, err := os.Lstat(tag.stageDir)
		if err != nil || !fi.IsDir() {
			return "", fmt.Errorf("tag %s: its staging directory %s is gone or was replaced (by a shell step?)", tag.Name, tag.stageDir)
		}
		return tag.stageDir, nil
	}
	if tag.inParent == "" {
		return "", fmt.Errorf("tag %s is not mounted (add a `mount: %s` step before this one)", tag.Name, tag.Name)
	}
	parent, err := b.State.Tags.Get(tag.MountOn)
	if err != nil {
		return "", err
	}
	pdir, err := b.tagDirDepth(parent, depth+1)
	if err != nil {
		return "", err
	}
	r, err := stage.OpenRoot(pdir)
	if err != nil {
		return "", err
	}
	defer r.Close()
	if err := r.CheckNoSymlinks(tag.inParent); err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			return "", fmt.Errorf("tag %s: its mount point %s in tag %s was replaced by a symbolic link after the mount step; a mount point must stay a directory", tag.Name, tag.inParent, parent.Name)
		}
		return "", fmt.Errorf("tag %s: its mount point %s in tag %s: %w", tag.Name, tag.inParent, parent.Name, err)
	}
	return filepath.Join(pdir, filepath.FromSlash(strings.TrimPrefix(tag.inParent, "/"))), nil
}

// mountNested makes tag's tree the directory dirname of parent's tree:
// created if missing and resolved inside that tree (see the rule above).
func (b *Build) mountNested(tag, parent *Tag, dirname string) error {
	pdir, err := b.tagDir(parent)
	if err != nil {
		return err
	}
	target := path.Clean("/" + dirname)
	if err := b.FileOp(stage.FileOp{Op: "create-dir", Root: pdir, Path: target, Perm: 0o755}); err != nil {
		return err
	}
	r, err := stage.OpenRoot(pdir)
	if err != nil {
		return err
	}
	defer r.Close()
	resolved, err := r.ResolveDir(target)
	if err != nil {
		return fmt.Errorf("mount point %s in tag %s: %w", target, parent.Name, err)
	}
	if resolved == "/" {
		return fmt.Errorf("mount point %s resolves to the top of tag %s (a symbolic link in the image?): a filesystem cannot be mounted over its parent's root", target, parent.Name)
	}
	for _, other := range b.State.Tags.All() {
		if other != tag && other.Mounted && other.MountOn == parent.Name && other.inParent == resolved {
			return fmt.Errorf("mount point %s is where tag %s is already mounted (%s in tag %s)", target, other.Name, resolved, parent.Name)
		}
	}
	if resolved != target {
		b.Warnf("tag %s: mount point %s is a symbolic link in the image; its files go to %s of tag %s, where it leads inside the image", tag.Name, target, resolved, parent.Name)
	}
	tag.inParent = resolved
	tag.MountOn = parent.Name
	return nil
}

// inTop returns tag's tree's path inside its topmost parent's tree ("/"
// for a filesystem that is not nested), and that parent.
func (b *Build) inTop(tag *Tag) (string, *Tag, error) {
	p := "/"
	for depth := 0; tag.inParent != ""; depth++ {
		if depth > len(b.State.Tags.All()) {
			return "", nil, fmt.Errorf("tag %s: its mounts form a loop", tag.Name)
		}
		p = path.Join(tag.inParent, p)
		parent, err := b.State.Tags.Get(tag.MountOn)
		if err != nil {
			return "", nil, err
		}
		tag = parent
	}
	return p, tag, nil
}
