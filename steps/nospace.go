package steps

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// explainNoSpace adds to an error caused by a full filesystem (ENOSPC, or
// a tool saying "No space left on device") which filesystem is full, how
// much the build needs there, and what to do. Other errors are returned
// unchanged.
func (b *Build) explainNoSpace(err error) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || strings.Contains(strings.ToLower(err.Error()), "no space left on device")) {
		return err
	}
	var notes []string
	if b.stage != nil {
		if fs := describeFS(b.stage.Dir); fs.full() {
			notes = append(notes, fmt.Sprintf(
				"the stage's filesystem is full (%s): this build's stage may need up to %s (the size of the filesystems it fills); set VMDB2_STAGE_DIR (or TMPDIR) to a directory on a filesystem with that much room",
				fs, sizeText(b.stageNeed())))
		}
	}
	for _, img := range b.images() {
		if fs := describeFS(filepath.Dir(img)); fs.full() {
			notes = append(notes, fmt.Sprintf("the filesystem holding the image %s is full (%s): make room there, or build the image elsewhere", img, fs))
		}
	}
	if len(notes) == 0 {
		return err
	}
	return fmt.Errorf("%w\n(%s)", err, strings.Join(notes, ";\n "))
}

// stageNeed bounds what the stage holds: the sizes of the partitions whose
// trees it holds, else of the images.
func (b *Build) stageNeed() int64 {
	var n int64
	for _, t := range b.State.Tags.All() {
		if t.hasTree() {
			n += t.Size
		}
	}
	if n == 0 {
		n = b.imagesSize()
	}
	return n
}

// images lists the image files the build writes.
func (b *Build) images() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range append([]string{b.Settings.Output, b.Settings.Image}, tagImages(&b.State.Tags)...) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func tagImages(t *Tags) []string {
	var out []string
	for _, tag := range t.All() {
		out = append(out, tag.Image)
	}
	return out
}

// fsInfo describes the filesystem a path is on.
type fsInfo struct {
	mount      string // its mount point
	typ        string
	size, free int64
}

// full reports whether the filesystem has (almost) nothing left: less than
// 1 MiB or 1%.
func (f fsInfo) full() bool {
	return f.mount != "" && (f.free < 1<<20 || f.free < f.size/100)
}

func (f fsInfo) String() string {
	return fmt.Sprintf("%s on %s, %s, %s free", f.typ, f.mount, sizeText(f.size), sizeText(f.free))
}

// describeFS finds the filesystem of path: its mount point is the last
// directory up the tree on the same device.
func describeFS(path string) fsInfo {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return fsInfo{}
	}
	info := fsInfo{typ: fsTypeName(st.Type), size: int64(st.Blocks) * st.Bsize, free: int64(st.Bavail) * st.Bsize}
	dir, err := filepath.Abs(path)
	if err != nil {
		return fsInfo{}
	}
	dev := func(p string) (uint64, bool) {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, false
		}
		s, ok := fi.Sys().(*syscall.Stat_t)
		return uint64(s.Dev), ok
	}
	here, ok := dev(dir)
	for ok && dir != "/" {
		up, upOK := dev(filepath.Dir(dir))
		if !upOK || up != here {
			break
		}
		dir = filepath.Dir(dir)
	}
	info.mount = dir
	return info
}

// fsTypeName names the usual filesystem types by their statfs magic.
func fsTypeName(magic int64) string {
	switch magic {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext2/3/4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("filesystem type %#x", magic)
}
