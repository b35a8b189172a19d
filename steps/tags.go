package steps

import (
	"fmt"

	"github.com/vmdb2-go/vmdb2/fs/ext"
)

// Tag is what a build knows about one tagged partition: where it is in the
// image, its filesystem, and its staging directory once mounted. vmdb2's
// tag table, minus device paths: nothing is mapped, the partition is a byte
// range of the image.
type Tag struct {
	Name    string
	Aliases []string // other names (vmdb2 0.13's fs-tag)

	// The partition: the image (file or block device) it lives in, its
	// number there and its byte range.
	Image      string
	PartNumber int
	Offset     int64
	Size       int64

	// Reused is set on the tags `kpartx: tags` and `lvscan` make of an
	// existing image: without a mkfs, their filesystem is already there,
	// and mounting one imports its files (reuse.go).
	Reused bool

	// The filesystem, set by mkfs (or probed when a reused tag is mounted).
	FSType   string
	Label    string
	Options  string
	UUID     [16]byte // ext, btrfs, f2fs, swap, ...
	VolumeID uint32   // vfat
	HashSeed [16]byte // ext
	// UUIDText is the filesystem's UUID as blkid and /etc/fstab show it.
	UUIDText string

	// The mount, set by mount: its mount point as the spec gives it (for
	// fstab), the tag it is mounted on, and where its tree is. The tree's
	// host path is only ever had from Build.tagDir, which checks it at each
	// use (see tagdir.go).
	MountPoint string
	MountOn    string
	Mounted    bool
	// stageDir is the stage directory that is the tree of a filesystem not
	// nested in another (or of an ESP the grub step fills unmounted).
	stageDir string
	// inParent is a nested filesystem's directory in its parent's tree,
	// resolved inside that tree when mounted: no symlink on its way.
	inParent string
	// imported are the device nodes of an imported filesystem, added when
	// it is built again.
	imported []ext.Device
	// Built is set once the filesystem was built from the directory (or
	// its build failed, which is not tried again).
	Built bool

	// The layer the tag is, when it is not a partition (see layers.go).
	LUKS *LUKSLayer
	LV   *LVLayer
}

// Tags is the build's tag table, in creation order.
type Tags struct {
	list []*Tag
}

// Add creates a tag; a name may be used once (vmdb2: Tag already used).
func (t *Tags) Add(name string) (*Tag, error) {
	if _, err := t.Get(name); err == nil {
		return nil, t.addErr(name)
	}
	tag := &Tag{Name: name}
	t.list = append(t.list, tag)
	return tag, nil
}

// Get finds a tag by name or alias (vmdb2: Unknown tag).
func (t *Tags) Get(name string) (*Tag, error) {
	for _, tag := range t.list {
		if tag.Name == name {
			return tag, nil
		}
		for _, a := range tag.Aliases {
			if a == name {
				return tag, nil
			}
		}
	}
	return nil, fmt.Errorf("Unknown tag: %s", name)
}

// All returns the tags in creation order.
func (t *Tags) All() []*Tag { return t.list }

// Root returns the first mounted tag whose mount point is "/".
func (t *Tags) Root() (*Tag, error) {
	for _, tag := range t.list {
		if tag.Mounted && tag.MountPoint == "/" {
			return tag, nil
		}
	}
	return nil, fmt.Errorf("no filesystem is mounted at / yet (a `mount:` step without `dirname` must come first)")
}

func (t *Tags) addErr(name string) error { return fmt.Errorf("Tag already used: %s", name) }
