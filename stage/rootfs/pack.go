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
	"strconv"
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
	cfg, err := newPackConfig(abs, dirs, opts)
	if err != nil {
		return fmt.Errorf("packing %s: %w", root, err)
	}
	if err := writeTarball(ctx, cfg, tarball); err != nil {
		return fmt.Errorf("packing %s into %s: %w", root, tarball, err)
	}
	return nil
}

// newPackConfig is the tree walk's configuration for Pack's arguments.
func newPackConfig(abs string, dirs []string, opts PackOptions) (packConfig, error) {
	cfg := packConfig{Root: abs}
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	for _, d := range dirs {
		rel, err := cleanName(d)
		if err != nil {
			return cfg, fmt.Errorf("directory %w", err)
		}
		cfg.Dirs = append(cfg.Dirs, rel)
	}
	for _, d := range opts.Exclude {
		rel, err := cleanName(d)
		if err != nil || rel == "" {
			return cfg, fmt.Errorf("bad excluded directory %q", d)
		}
		cfg.Exclude = append(cfg.Exclude, rel)
	}
	if !opts.SourceDateEpoch.IsZero() {
		cfg.SDE = opts.SourceDateEpoch.Unix()
		cfg.Clamp = true
	}
	if opts.DeviceManifest != "" {
		var err error
		if cfg.Devices, err = ReadManifest(opts.DeviceManifest); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// writeTarball writes cfg's tree, compressed as tarball's name says, into
// a temporary file beside tarball and renames it into place once it is
// complete and synced; on failure the temporary file is removed.
func writeTarball(ctx context.Context, cfg packConfig, tarball string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(tarball), filepath.Base(tarball)+".*.tmp")
	if err != nil {
		return err
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
		return err
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
	return err
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
		if err := p.walkTop(d); err != nil {
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

// walkTop archives the directory rel of cfg.Dirs. It is opened one
// component at a time without following links: a nested filesystem's
// directory reached through a link of the tree ("boot -> /somewhere")
// would archive what the link leads to, on the host.
func (p *packer) walkTop(rel string) error {
	fd, err := unix.Open(p.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", p.root, err)
	}
	xpath := p.root // of the directory itself, for its xattrs
	if rel != "" {
		comps := strings.Split(rel, "/")
		for i, c := range comps {
			nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				unix.Close(fd)
				if err == unix.ELOOP || err == unix.ENOTDIR {
					return fmt.Errorf("%s is not a directory of the tree: %s is a symbolic link or not a directory", p.abs(rel), p.abs(strings.Join(comps[:i+1], "/")))
				}
				return fmt.Errorf("%s: %w", p.abs(rel), err)
			}
			if i < len(comps)-1 {
				unix.Close(fd)
			} else {
				// The parent stays open while rel's own entry
				// is written (its xattrs are read through it).
				defer unix.Close(fd)
				xpath = procAt(fd, c)
			}
			fd = nfd
		}
	}
	dir := os.NewFile(uintptr(fd), p.abs(rel))
	defer dir.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", p.abs(rel), err)
	}
	return p.walk(rel, dir, fd, &st, xpath)
}

// procAt names the entry name of the open directory dfd through /proc, so
// that path-based calls (xattrs) reach exactly that entry; a link there is
// not followed by the l* calls.
func procAt(dfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + name
}

// sameFile says whether two stats are of one file of one type: what was
// examined is what was opened.
func sameFile(a, b *unix.Stat_t) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Mode&unix.S_IFMT == b.Mode&unix.S_IFMT
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

// walk archives directory rel (open as dir, with descriptor fd, stat st
// and xattr path xpath) and, unless it is excluded, everything below it.
// Children are examined and opened relative to fd, never following a
// link.
func (p *packer) walk(rel string, dir *os.File, fd int, st *unix.Stat_t, xpath string) error {
	if err := p.entry(rel, st, xpath, -1, ""); err != nil {
		return err
	}
	p.done[rel] = true
	if p.exclude[rel] {
		return nil
	}
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", p.abs(rel), err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
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
	sort.Strings(names)
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
		var cst unix.Stat_t
		if err := unix.Fstatat(fd, name, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", p.abs(crel), err)
		}
		if cst.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = p.walkChild(crel, fd, name, &cst)
		} else {
			err = p.entry(crel, &cst, procAt(fd, name), fd, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// walkChild opens the subdirectory name of dfd (examined as cst) and walks
// it.
func (p *packer) walkChild(rel string, dfd int, name string, cst *unix.Stat_t) error {
	if testHookBeforeOpen != nil {
		testHookBeforeOpen(rel)
	}
	cfd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", p.abs(rel), changed(err))
	}
	sub := os.NewFile(uintptr(cfd), p.abs(rel))
	defer sub.Close()
	var st unix.Stat_t
	if err := unix.Fstat(cfd, &st); err != nil {
		return fmt.Errorf("%s: %w", p.abs(rel), err)
	}
	if !sameFile(cst, &st) {
		return fmt.Errorf("%s: %w", p.abs(rel), errChanged)
	}
	return p.walk(rel, sub, cfd, cst, procAt(dfd, name))
}

var errChanged = errors.New("changed while the tree was being packed (is something still running in it?)")

// changed turns the errors of opening, without following links, what was
// a directory or a file a moment ago into errChanged.
func changed(err error) error {
	if err == unix.ELOOP || err == unix.ENOTDIR || err == unix.ENOENT {
		return errChanged
	}
	return err
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

// entry writes one member (and a regular file's data): rel, examined as
// st, whose xattrs are read at xpath; name is its entry in the open
// directory dfd (-1 for a directory, which is open already).
func (p *packer) entry(rel string, st *unix.Stat_t, xpath string, dfd int, name string) error {
	abs := p.abs(rel)
	h, err := p.header(rel, st, dfd, name)
	if err != nil || h == nil {
		return err
	}
	isReg := h.Typeflag == tar.TypeReg
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
		x, err := readXattrs(xpath)
		if err != nil {
			return fmt.Errorf("%s: %w", abs, err)
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
		if err := p.data(rel, st, dfd, name); err != nil {
			return fmt.Errorf("%s: %w", abs, err)
		}
	}
	return nil
}

// header is the tar header of the tree's entry rel (name in directory
// dfd), by its type; nil for a socket, which GNU tar leaves out too.
func (p *packer) header(rel string, st *unix.Stat_t, dfd int, name string) (*tar.Header, error) {
	h := &tar.Header{
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: p.mtime(st.Mtim.Sec),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, tarName(rel, true)
	case unix.S_IFREG:
		h.Typeflag, h.Name, h.Size = tar.TypeReg, tarName(rel, false), st.Size
	case unix.S_IFLNK:
		h.Typeflag, h.Name = tar.TypeSymlink, tarName(rel, false)
		t, err := readlinkAt(dfd, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.abs(rel), err)
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
		return nil, nil // sockets: GNU tar ignores them too
	}
	return h, nil
}

// data copies the content of the regular file name of dfd (examined as
// st) into the archive. It is opened first without being opened for
// reading (O_PATH), and read only if it is still that regular file: a
// FIFO or device swapped in is never opened.
func (p *packer) data(rel string, st *unix.Stat_t, dfd int, name string) error {
	if testHookBeforeOpen != nil {
		testHookBeforeOpen(rel)
	}
	pfd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return changed(err)
	}
	defer unix.Close(pfd)
	var now unix.Stat_t
	if err := unix.Fstat(pfd, &now); err != nil {
		return err
	}
	if !sameFile(st, &now) {
		return errChanged
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reopening it through /proc (is /proc mounted?): %w", err)
	}
	f := os.NewFile(uintptr(fd), p.abs(rel))
	defer f.Close()
	n, err := io.CopyBuffer(writerOnly{p.tw}, io.LimitReader(f, st.Size), p.buf)
	if err == nil && n != st.Size {
		err = errors.New("file shrank while it was being read")
	}
	return err
}

// readlinkAt reads the link name of the directory dfd.
func readlinkAt(dfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

type writerOnly struct{ io.Writer }

// readXattrs returns the extended attributes of the file at abs (not
// following a symlink at its last component).
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
		return nil, fmt.Errorf("listing xattrs: %w", err)
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
			return nil, fmt.Errorf("reading xattr %s: %w", name, err)
		}
		m[name] = string(v[:vn])
	}
	return m, nil
}
