package fat

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	attrReadOnly  = 0x01
	attrVolumeID  = 0x08
	attrDirectory = 0x10
	attrArchive   = 0x20
	attrLongName  = 0x0F

	maxFileSize = 0xFFFFFFFF
	// A directory may hold at most 65536 32-byte entries (2 MiB).
	maxDirEntries = 65536
)

// node is one file or directory of the source tree.
type node struct {
	name     string // name in the source directory ("" for the root)
	src      string // host path of the content (a symlink's target)
	rel      string // path relative to the source root, for messages
	dir      bool
	size     int64
	readOnly bool
	children []*node // sorted by name

	short [11]byte // short name
	lfn   bool     // needs long-name entries

	// Set by the layout.
	first    uint32 // first cluster (0 for empty files and the FAT12/16 root)
	clusters uint32
}

// entries is the number of 32-byte directory entries a directory needs
// for its children, "." and "..", or the volume label in the root.
func (n *node) entries(isRoot, hasLabel bool) int {
	c := 2
	if isRoot {
		c = 0
		if hasLabel {
			c = 1
		}
	}
	for _, ch := range n.children {
		c++
		if ch.lfn {
			c += lfnSlots(ch.name)
		}
	}
	return c
}

// scanner walks a source tree.
type scanner struct {
	root string // the source directory with symlinks resolved
}

// scanTree reads the whole tree under srcDir and gives every entry its
// short name.
func scanTree(srcDir string) (*node, error) {
	root, err := filepath.EvalSymlinks(srcDir)
	if err != nil {
		return nil, fmt.Errorf("fat: source directory: %w", err)
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("fat: source directory: %w", err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("fat: source directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("fat: source %s is not a directory", srcDir)
	}
	s := &scanner{root: root}
	n := &node{src: root, rel: ".", dir: true}
	if err := s.scanDir(n); err != nil {
		return nil, err
	}
	return n, nil
}

func (s *scanner) scanDir(d *node) error {
	des, err := os.ReadDir(d.src)
	if err != nil {
		return fmt.Errorf("fat: reading %s: %w", d.src, err)
	}
	sort.Slice(des, func(i, j int) bool { return des[i].Name() < des[j].Name() })
	folded := map[string]string{}
	namer := newShortNamer()
	for _, de := range des {
		name := de.Name()
		rel := filepath.Join(d.rel, name)
		if err := checkLongName(name); err != nil {
			return fmt.Errorf("fat: %s: %v", filepath.Join(d.src, name), err)
		}
		key := strings.ToUpper(name)
		if other, ok := folded[key]; ok {
			return fmt.Errorf("fat: %s and %s differ only in case, which FAT does not distinguish", filepath.Join(d.src, other), filepath.Join(d.src, name))
		}
		folded[key] = name
		c := &node{name: name, rel: rel, src: filepath.Join(d.src, name)}
		if err := s.classify(c); err != nil {
			return err
		}
		d.children = append(d.children, c)
	}
	// Exact 8.3 names first, so that generated names avoid them.
	for _, c := range d.children {
		if sn, ok := exactShortName(c.name); ok {
			c.short = sn
			namer.reserve(sn)
		} else {
			c.lfn = true
		}
	}
	for _, c := range d.children {
		if c.lfn {
			if c.short, err = namer.generate(c.name); err != nil {
				return fmt.Errorf("fat: %s: %w", c.src, err)
			}
		}
	}
	if e := d.entries(d.rel == ".", true); e > maxDirEntries {
		return fmt.Errorf("fat: directory %s needs %d entries; FAT allows %d", d.src, e, maxDirEntries)
	}
	for _, c := range d.children {
		if c.dir {
			if err := s.scanDir(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// classify fills in the kind, size and content path of an entry,
// following symbolic links by the rule in the package documentation.
func (s *scanner) classify(c *node) error {
	fi, err := os.Lstat(c.src)
	if err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := s.resolve(c.src)
		if err != nil {
			return err
		}
		c.src = target
		if fi, err = os.Stat(target); err != nil {
			return fmt.Errorf("fat: %w", err)
		}
	}
	switch {
	case fi.IsDir():
		c.dir = true
	case fi.Mode().IsRegular():
		if fi.Size() > maxFileSize {
			return fmt.Errorf("fat: %s is %d bytes; FAT files can be at most %d bytes (4 GiB - 1)", c.src, fi.Size(), int64(maxFileSize))
		}
		c.size = fi.Size()
		c.readOnly = fi.Mode().Perm()&0o222 == 0
	default:
		return fmt.Errorf("fat: %s is a %s, which FAT cannot store", c.src, kindOf(fi.Mode()))
	}
	return nil
}

// resolve follows the symbolic link at p to a regular file inside the
// source tree.
func (s *scanner) resolve(p string) (string, error) {
	orig := p
	for hops := 0; ; hops++ {
		if hops == 40 {
			return "", fmt.Errorf("fat: %s: too many levels of symbolic links", orig)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("fat: %w", err)
		}
		if filepath.IsAbs(target) {
			return "", fmt.Errorf("fat: %s is a symbolic link to the absolute path %s; FAT has no symbolic links and only relative links to files inside the tree are copied", orig, target)
		}
		next := filepath.Join(filepath.Dir(p), target)
		if !s.inside(next) {
			return "", fmt.Errorf("fat: %s is a symbolic link leading out of %s; FAT has no symbolic links", orig, s.root)
		}
		fi, err := os.Lstat(next)
		if err != nil {
			return "", fmt.Errorf("fat: %s is a dangling symbolic link: %w", orig, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			p = next
			continue
		}
		// Links in the directories on the way must stay inside too.
		real, err := filepath.EvalSymlinks(next)
		if err != nil {
			return "", fmt.Errorf("fat: %s: %w", orig, err)
		}
		if !s.inside(real) {
			return "", fmt.Errorf("fat: %s is a symbolic link leading out of %s; FAT has no symbolic links", orig, s.root)
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("fat: %s is a symbolic link to a %s; FAT has no symbolic links and only links to regular files are copied", orig, kindOf(fi.Mode()))
		}
		return real, nil
	}
}

func (s *scanner) inside(p string) bool {
	rel, err := filepath.Rel(s.root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}
