package steps

import (
	"os"
	"sort"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Inside the build's namespace the tags' trees look mounted, as vmdb2's
// real mounts do: every command that works on a filesystem's tree (its
// Root, or the Tree a host-side step names: shell, ansible-playbook) gets
// the mount points of that tree and of the tags nested in it, which the
// namespace bind-mounts onto themselves (stage/userns Cmd.MountPoints), and
// the tree's Carry: the mounts `shell` steps made in the tree and did not
// unmount, kept for the rest of the run phase (Cmd.KeepMounts). Nothing
// of either is ever mounted on the host; the Carries are dropped when the
// run phase ends, before the teardowns.

// withTreeMounts fills c's Tree, MountPoints and Carry from the tag whose
// tree c works on; a command on no mounted tag's top-level tree gets none.
func (b *Build) withTreeMounts(c *userns.Cmd) error {
	tree := c.Root
	if tree == "" {
		tree = c.Tree
	}
	top, points, err := b.mountPointsOf(tree)
	if err != nil || top == nil {
		c.Tree, c.MountPoints, c.Carry, c.KeepMounts = "", nil, nil, false
		return err
	}
	c.Tree, c.MountPoints = tree, points
	if b.carries == nil {
		b.carries = map[*Tag]*userns.Carry{}
	}
	if b.carries[top] == nil {
		b.carries[top] = &userns.Carry{}
	}
	c.Carry = b.carries[top]
	return nil
}

// mountPointsOf returns the mounted tag whose top-level tree is tree and
// the mount points in it ("/" and those of the tags nested in it, parents
// first), each tree checked now (tagDir: a mount point replaced by a link
// fails the step).
func (b *Build) mountPointsOf(tree string) (*Tag, []string, error) {
	if tree == "" {
		return nil, nil, nil
	}
	want, err := os.Stat(tree)
	if err != nil {
		return nil, nil, nil
	}
	var top *Tag
	for _, tag := range b.State.Tags.All() {
		if !tag.Mounted || tag.inParent != "" || tag.stageDir == "" {
			continue
		}
		if fi, err := os.Stat(tag.stageDir); err == nil && os.SameFile(fi, want) {
			top = tag
			break
		}
	}
	if top == nil {
		return nil, nil, nil
	}
	var points []string
	for _, tag := range b.State.Tags.All() {
		if !tag.Mounted {
			continue
		}
		p, t, err := b.inTop(tag)
		if err != nil || t != top {
			continue
		}
		if _, err := b.tagDir(tag); err != nil {
			return nil, nil, err
		}
		points = append(points, p)
	}
	depth := func(p string) int { return len(strings.FieldsFunc(p, func(r rune) bool { return r == '/' })) }
	sort.SliceStable(points, func(i, j int) bool { return depth(points[i]) < depth(points[j]) })
	return top, points, nil
}

// dropCarried frees the mounts kept by shell steps.
func (b *Build) dropCarried() {
	for _, c := range b.carries {
		if targets := c.Targets(); len(targets) > 0 {
			b.Detail("mounts left by shell steps, gone with the build's namespace: %s", strings.Join(targets, ", "))
		}
		c.Close()
	}
	b.carries = nil
}
