package steps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/rootfs"
)

// cacheRootfsKind saves every mounted filesystem's tree (the root tag's and
// the nested ones) into --rootfs-tarball, unless that file already exists
// and `force` (vmdb2 0.28) is not set, as vmdb2 does. The compression follows the name (.tar.gz, .tar.xz,
// .tar.zst, .tar); the tarball is sorted, has numeric owners and, with
// SOURCE_DATE_EPOCH, clamped mtimes, and is written atomically.
var cacheRootfsKind = &Kind{
	Name:        "cache-rootfs",
	Summary:     "save the root filesystem tree as the --rootfs-tarball cache",
	Implemented: true,
	Check: func(s *Step, report reportFunc) {
		if _, err := tarOptions(s.Str("options")); err != nil {
			report(s.KeyLine("options"), Error, "cache-rootfs: %v", err)
		}
	},
	Keys: []Key{
		{Name: "cache-rootfs", Type: TStr, Required: true},
		{Name: "options", Type: TStr, Default: "--one-file-system"},
		{Name: "force", Type: TBool, Default: false},
	},
	Run: func(b *Build, s *Step) error {
		root, rootDir, err := b.mountedTree(s.Str("cache-rootfs"))
		if err != nil {
			return err
		}
		tarball := b.Settings.RootfsTarball
		if tarball == "" {
			return errors.New("--rootfs-tarball MUST be set")
		}
		if write, err := cacheWanted(tarball, s.Bool("force")); err != nil || !write {
			if err == nil {
				b.Progress("%s exists: not caching again (force: true replaces it)", tarball)
			}
			return err
		}
		dirs, err := b.cachedDirs(root)
		if err != nil {
			return err
		}
		exclude, _ := tarOptions(s.Str("options"))
		st, err := b.Stage()
		if err != nil {
			return err
		}
		b.Progress("caching rootdir %s as %s", rootDir, tarball)
		return rootfs.Pack(b.ctx, rootDir, dirs, tarball, rootfs.PackOptions{
			SourceDateEpoch: b.Settings.SourceDateEpoch,
			DeviceManifest:  st.MetaPath("devices.json"),
			Exclude:         exclude,
		})
	},
}

// cacheWanted says whether cache-rootfs writes tarball: when it does not
// exist yet, or always with force (the new tarball then replaces the old
// one atomically, so a failed build keeps the old).
func cacheWanted(tarball string, force bool) (bool, error) {
	if force {
		return true, nil
	}
	_, err := os.Stat(tarball)
	if err == nil {
		return false, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return false, err
}

// cachedDirs lists the trees of the mounted tags, relative to root's tree
// (from where each was resolved when mounted, never from host paths), and
// checks that they are all inside it.
func (b *Build) cachedDirs(root *Tag) ([]string, error) {
	rootIn, rootTop, err := b.inTop(root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, tag := range b.State.Tags.All() {
		if !tag.Mounted {
			continue
		}
		in, top, err := b.inTop(tag)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(rootIn, in)
		if err != nil || top != rootTop || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("tag %s is mounted outside %s and cannot be cached with it", tag.Name, root.Name)
		}
		if _, err := b.tagDir(tag); err != nil {
			return nil, err
		}
		b.Progress("tag %s mounted %s cached True", tag.Name, tag.MountPoint)
		dirs = append(dirs, rel)
	}
	sort.Strings(dirs)
	return dirs, nil
}

// tarOptions reads the GNU tar options vmdb2 passes through: the default
// --one-file-system (nothing is mounted in the stage, so it has nothing to
// skip) and --exclude=DIR; others are refused rather than silently ignored.
func tarOptions(opts string) ([]string, error) {
	var exclude []string
	fields := strings.Fields(opts)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case f == "--one-file-system":
		case strings.HasPrefix(f, "--exclude="):
			exclude = append(exclude, strings.TrimPrefix(f, "--exclude="))
		case f == "--exclude" && i+1 < len(fields):
			i++
			exclude = append(exclude, fields[i])
		default:
			return nil, fmt.Errorf("unsupported tar option %q in `options` (supported: --one-file-system, --exclude=DIR)", f)
		}
	}
	return exclude, nil
}
