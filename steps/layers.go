package steps

import (
	"fmt"

	"github.com/vmdb2-go/vmdb2/partition/luks"
	"net/url"
	"os"
	"strings"
)

// The layers below a filesystem. Every tag is a byte range (Image, Offset,
// Size) of a backing file: the output image for a partition, or a sparse
// scratch file in the stage for what only exists once the build is over
// (the cleartext of a LUKS container, which is encrypted into its tag at the
// cryptsetup step's teardown; an LV whose extents span several PVs, copied
// to its segments at the lvcreate step's teardown). Teardowns run in the
// reverse order of the steps, so a layer is finished after everything on it
// (filesystems are built at their mount's teardown) and before what it sits
// on.

// LUKSLayer is set on the cleartext tag that a cryptsetup step opens.
type LUKSLayer struct {
	// Name is the mapper name (/dev/mapper/NAME in the target), which is
	// the cleartext tag's name, as vmdb2 opens it.
	Name string
	// UUID is the LUKS header's UUID as `cryptsetup luksUUID` prints it.
	UUID string
	// Under is the tag that holds the container (header and ciphertext).
	Under *Tag
	// Digest is the cleartext's digest, once encrypted (luks.Container.Encrypt).
	Digest []byte
	// container is the formatted header and volume key until the
	// cleartext is encrypted at the step's teardown.
	container *luks.Container
}

// LVLayer is set on the tag of a logical volume.
type LVLayer struct {
	VG, LV string
	// VGUUID and LVUUID are LVM's ids in its 38-character dashed form.
	VGUUID, LVUUID string
	// PVs are the tags holding the LV's extents, in segment order.
	PVs []*Tag
}

// MapperName is the device-mapper name of the LV as the target's udev
// makes it (/dev/mapper/VG-LV, each dash within a name doubled).
func (l *LVLayer) MapperName() string {
	return strings.ReplaceAll(l.VG, "-", "--") + "-" + strings.ReplaceAll(l.LV, "-", "--")
}

// LinuxDevice is the device the booted target knows tag's contents by
// when they are not a plain partition: /dev/mapper/NAME for an opened LUKS
// container or an LV, "" for a partition.
func (t *Tag) LinuxDevice() string {
	switch {
	case t.LV != nil:
		return "/dev/mapper/" + t.LV.MapperName()
	case t.LUKS != nil:
		return "/dev/mapper/" + t.LUKS.Name
	}
	return ""
}

// Stack is tag and the tags under it, down to a partition: the first PV of
// an LV, the container of a LUKS cleartext.
func (t *Tag) Stack() []*Tag {
	out := []*Tag{t}
	for cur := t; ; {
		var next *Tag
		switch {
		case cur.LV != nil && len(cur.LV.PVs) > 0:
			next = cur.LV.PVs[0]
		case cur.LUKS != nil:
			next = cur.LUKS.Under
		}
		if next == nil || len(out) > 64 {
			return out
		}
		out = append(out, next)
		cur = next
	}
}

// Partition is the partition at the bottom of tag's stack (tag itself for
// a partition), or nil when the stack ends elsewhere.
func (t *Tag) Partition() *Tag {
	s := t.Stack()
	if bottom := s[len(s)-1]; bottom.PartNumber > 0 {
		return bottom
	}
	return nil
}

// scratchFile creates a sparse file of size bytes in the stage's metadata
// directory to back a layer that is written to its tag at teardown. The
// stage, and so the file, is removed when the build ends.
func (b *Build) scratchFile(name string, size int64) (string, error) {
	st, err := b.Stage()
	if err != nil {
		return "", err
	}
	// The name is escaped so that tag names like "/" or "/boot" stay one
	// file name in the directory.
	p := st.MetaPath("scratch-" + url.PathEscape(name))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("scratch space for %s: %w", name, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		os.Remove(p)
		return "", fmt.Errorf("scratch space for %s (%s): %w", name, sizeText(size), err)
	}
	return p, nil
}
