package rootfs

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// PackOptions are the settings of [Pack].
type PackOptions struct {
	// SourceDateEpoch, when not zero, is the latest mtime written: later
	// ones are clamped to it (as GNU tar's --clamp-mtime --mtime=@N).
	SourceDateEpoch time.Time

	// DeviceManifest, when set, names a device manifest (see [Manifest])
	// whose devices are added to the tarball as real device entries, for a
	// stage unpacked in an unprivileged namespace. A device whose path
	// exists in the tree is not added (the tree wins), nor one whose parent
	// directory is no longer in the tree. A missing file adds nothing.
	DeviceManifest string

	// Exclude lists directories, relative to root, whose contents are not
	// archived (the directories themselves are), as GNU tar's
	// --one-file-system skips what is mounted below the tree: the mount
	// points of the virtual filesystems, say. Nothing is mounted on the
	// host in this implementation, so callers rarely need it.
	Exclude []string
}

// Pack writes the directories dirs of the tree at root into tarball,
// replacing it: vmdb2's `tar --one-file-system -C ROOT -caf TARBALL . ./boot/efi`.
// dirs are relative to root ("." for root itself, "boot/efi" or
// "/boot/efi" for a nested mount point); nil means just ".". As every
// filesystem of the build is a directory of the one stage tree, each entry is
// archived once even when dirs nest. Members are named "./…" as GNU tar
// names them. The compression follows the tarball's name ([FormatFor]).
//
// The tarball is reproducible and written atomically (see the package
// documentation). vmdb2's `cache-rootfs` writes nothing when the tarball
// already exists: that check is the caller's. As an ordinary user Pack reads
// the tree as root of the build's user namespace, so [userns.Init] must have
// been called.
func Pack(ctx context.Context, root string, dirs []string, tarball string, opts PackOptions) (err error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("packing %s: %w", root, err)
	}
	if st, err := os.Stat(abs); err != nil {
		return fmt.Errorf("packing rootfs: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("packing rootfs: %s is not a directory", root)
	}
	cfg := packConfig{Root: abs}
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	for _, d := range dirs {
		rel, err := cleanName(d)
		if err != nil {
			return fmt.Errorf("packing %s: directory %w", root, err)
		}
		cfg.Dirs = append(cfg.Dirs, rel)
	}
	for _, d := range opts.Exclude {
		rel, err := cleanName(d)
		if err != nil || rel == "" {
			return fmt.Errorf("packing %s: bad excluded directory %q", root, d)
		}
		cfg.Exclude = append(cfg.Exclude, rel)
	}
	if !opts.SourceDateEpoch.IsZero() {
		cfg.SDE = opts.SourceDateEpoch.Unix()
		cfg.Clamp = true
	}
	if opts.DeviceManifest != "" {
		if cfg.Devices, err = ReadManifest(opts.DeviceManifest); err != nil {
			return fmt.Errorf("packing %s: %w", root, err)
		}
	}

	f, err := os.CreateTemp(filepath.Dir(tarball), filepath.Base(tarball)+".*.tmp")
	if err != nil {
		return fmt.Errorf("packing %s: %w", root, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	cw, err := compressor(FormatFor(tarball), bw)
	if err != nil {
		return fmt.Errorf("packing %s into %s: %w", root, tarball, err)
	}
	if inProcess() {
		err = writeTree(ctx, cw, cfg)
	} else {
		err = packInNamespace(ctx, cw, cfg)
	}
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = os.Rename(tmp, tarball)
	}
	if err != nil {
		return fmt.Errorf("packing %s into %s: %w", root, tarball, err)
	}
	return nil
}

// packConfig is what the tree walk needs; it is passed to the namespace
// helper as JSON.
type packConfig struct {
	Root    string   `json:"root"`
	Dirs    []string `json:"dirs"`
	Exclude []string `json:"exclude,omitempty"`
	Devices []Device `json:"devices,omitempty"`
	SDE     int64    `json:"sde,omitempty"`
	Clamp   bool     `json:"clamp,omitempty"`
}

// testHookBeforeOpen, when set by a test, runs after a directory or
// regular file of the tree was examined and before it is opened: where a
// tree changing under the walk would do harm.
var testHookBeforeOpen func(rel string)

type devIno struct{ dev, ino uint64 }

type packer struct {
	ctx     context.Context
	cfg     packConfig
	tw      *tar.Writer
	root    string
	exclude map[string]bool
	devs    map[string][]Device // by parent directory (relative, "" for root)
	done    map[string]bool     // directories walked
	links   map[devIno]string
	buf     []byte
}

// writeTree writes the uncompressed tar stream of cfg's tree to w.
func writeTree(ctx context.Context, w io.Writer, cfg packConfig) error {
	p := &packer{ctx: ctx, cfg: cfg, tw: tar.NewWriter(w), root: cfg.Root,
		exclude: map[string]bool{}, devs: map[string][]Device{}, done: map[string]bool{},
		links: map[devIno]string{}, buf: make([]byte, 1<<20)}
	for _, e := range cfg.Exclude {
		p.exclude[e] = true
	}
	for _, d := range cfg.Devices {
		if err := d.check(); err != nil {
			return err
		}
		rel := strings.TrimPrefix(d.Path, "/")
		dir := path.Dir(rel)
		if dir == "." {
			dir = ""
		}
		p.devs[dir] = append(p.devs[dir], d)
	}
	for _, d := range cfg.Dirs {
		if p.covered(d) {
			continue
		}
		st, err := p.lstat(d)
		if err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s is not a directory", filepath.Join(p.root, d))
		}
		if err := p.walk(d, &st); err != nil {
			return err
		}
	}
	return p.tw.Close()
}

// covered says whether directory d was archived already, with its
// contents, as part of an earlier one.
func (p *packer) covered(d string) bool {
	for a := d; ; {
		if p.done[a] {
			return true
		}
		if a == "" {
			return false
		}
		if a = path.Dir(a); a == "." {
			a = ""
		}
		if p.exclude[a] {
			return false
		}
	}
}

func (p *packer) lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Lstat(p.abs(rel), &st)
	if err != nil {
		return st, fmt.Errorf("%s: %w", p.abs(rel), err)
	}
	return st, nil
}

func (p *packer) abs(rel string) string {
	if rel == "" {
		return p.root
	}
	return p.root + "/" + rel
}

func tarName(rel string, dir bool) string {
	if rel == "" {
		return "./"
	}
	if dir {
		return "./" + rel + "/"
	}
	return "./" + rel
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func (p *packer) mtime(sec int64) time.Time {
	if p.cfg.Clamp && sec > p.cfg.SDE {
		sec = p.cfg.SDE
	}
	return time.Unix(sec, 0)
}

// walk archives directory rel (whose stat is st) and, unless it is
// excluded, everything below it.
func (p *packer) walk(rel string, st *unix.Stat_t) error {
	if err := p.entry(rel, st); err != nil {
		return err
	}
	p.done[rel] = true
	if p.exclude[rel] {
		return nil
	}
	if testHookBeforeOpen != nil {
		testHookBeforeOpen(rel)
	}
	ents, err := os.ReadDir(p.abs(rel))
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ents)+len(p.devs[rel]))
	have := make(map[string]bool, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
		have[e.Name()] = true
	}
	var devs map[string]Device
	for _, d := range p.devs[rel] {
		if b := path.Base(d.Path); !have[b] {
			if devs == nil {
				devs = map[string]Device{}
			}
			devs[b] = d
			names = append(names, b)
			have[b] = true
		}
	}
	if devs != nil {
		sort.Strings(names)
	}
	for _, name := range names {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		crel := join(rel, name)
		if d, ok := devs[name]; ok {
			if err := p.device(crel, d); err != nil {
				return err
			}
			continue
		}
		cst, err := p.lstat(crel)
		if err != nil {
			return err
		}
		if cst.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = p.walk(crel, &cst)
		} else {
			err = p.entry(crel, &cst)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *packer) device(rel string, d Device) error {
	perm, _ := d.Perm()
	h := &tar.Header{Typeflag: tar.TypeChar, Name: tarName(rel, false), Mode: int64(perm),
		Uid: d.UID, Gid: d.GID, ModTime: p.mtime(d.Mtime), Devmajor: int64(d.Major), Devminor: int64(d.Minor)}
	if d.Type == "b" {
		h.Typeflag = tar.TypeBlock
	}
	if err := p.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// entry writes one member (and a regular file's data).
func (p *packer) entry(rel string, st *unix.Stat_t) error {
	abs := p.abs(rel)
	h := &tar.Header{
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: p.mtime(st.Mtim.Sec),
	}
	isReg := false
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, tarName(rel, true)
	case unix.S_IFREG:
		h.Typeflag, h.Name, h.Size = tar.TypeReg, tarName(rel, false), st.Size
		isReg = true
	case unix.S_IFLNK:
		h.Typeflag, h.Name = tar.TypeSymlink, tarName(rel, false)
		t, err := os.Readlink(abs)
		if err != nil {
			return err
		}
		h.Linkname = t
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag, h.Name = tar.TypeChar, tarName(rel, false)
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag, h.Name = tar.TypeFifo, tarName(rel, false)
	default:
		return nil // sockets: GNU tar ignores them too
	}
	if st.Nlink > 1 && h.Typeflag != tar.TypeDir {
		k := devIno{uint64(st.Dev), st.Ino}
		if first, ok := p.links[k]; ok {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			h.Devmajor, h.Devminor = 0, 0
			isReg = false
		} else {
			p.links[k] = h.Name
		}
	}
	if h.Typeflag != tar.TypeLink {
		x, err := readXattrs(abs)
		if err != nil {
			return err
		}
		if len(x) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range x {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
	}
	if err := p.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", abs, err)
	}
	if isReg && h.Size > 0 {
		if testHookBeforeOpen != nil {
			testHookBeforeOpen(rel)
		}
		f, err := os.OpenFile(abs, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(writerOnly{p.tw}, io.LimitReader(f, h.Size), p.buf)
		f.Close()
		if err == nil && n != h.Size {
			err = errors.New("file shrank while it was being read")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", abs, err)
		}
	}
	return nil
}

type writerOnly struct{ io.Writer }

// readXattrs returns the extended attributes of the file at abs (not
// following a symlink).
func readXattrs(abs string) (map[string]string, error) {
	buf := make([]byte, 1024)
	n, err := unix.Llistxattr(abs, buf)
	if err == unix.ERANGE {
		sz, err2 := unix.Llistxattr(abs, nil)
		if err2 != nil {
			return nil, err2
		}
		buf = make([]byte, sz)
		n, err = unix.Llistxattr(abs, buf)
	}
	if err == unix.ENOTSUP || n == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: listing xattrs: %w", abs, err)
	}
	m := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 256)
		vn, err := unix.Lgetxattr(abs, name, v)
		if err == unix.ERANGE {
			sz, err2 := unix.Lgetxattr(abs, name, nil)
			if err2 != nil {
				return nil, err2
			}
			v = make([]byte, sz)
			vn, err = unix.Lgetxattr(abs, name, v)
		}
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading xattr %s: %w", abs, name, err)
		}
		m[name] = string(v[:vn])
	}
	return m, nil
}
