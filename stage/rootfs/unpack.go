package rootfs

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// UnpackOptions are the settings of [Unpack].
type UnpackOptions struct {
	// DeviceManifest is the file (outside the tree) where Unpack records
	// the device nodes it could not create because mknod is refused
	// (in an unprivileged user namespace). It is always written when set,
	// replacing any previous file, and holds no devices when every node
	// was created. "" makes such a device node an error.
	DeviceManifest string
	// RecordDevices records device nodes in DeviceManifest even when they
	// could be created (as root), so that a stage unpacked as root is the
	// same as one unpacked as an ordinary user and the images built from
	// them are identical. It needs DeviceManifest.
	RecordDevices bool
}

// Unpack extracts the tarball into the directory root, which must exist,
// like vmdb2's `tar -C ROOT -xf TARBALL --numeric-owner`: numeric owners,
// modes (setuid, setgid, sticky), mtimes, symlinks, hard links, xattrs,
// fifos and device nodes are restored; members already present in root are
// replaced (a non-empty directory is kept and its metadata updated). The
// compression is recognised from the file's first bytes.
//
// As root it works in-process; as an ordinary user it runs as root of the
// build's user namespace (see the package documentation), so [userns.Init]
// must have been called. Device nodes that cannot be created are recorded in
// opts.DeviceManifest and not created at all.
//
// A missing tarball is an error wrapping fs.ErrNotExist: vmdb2's
// `unpack-rootfs` silently does nothing then, and the caller should check
// for it first. Unpack does not copy the host's /etc/resolv.conf into the
// tree as vmdb2 does (see the package documentation).
func Unpack(ctx context.Context, tarball, root string, opts UnpackOptions) error {
	f, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("unpacking rootfs: %w", err)
	}
	defer f.Close()
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", tarball, err)
	}
	if st, err := os.Stat(abs); err != nil {
		return fmt.Errorf("unpacking %s: %w", tarball, err)
	} else if !st.IsDir() {
		return fmt.Errorf("unpacking %s: %s is not a directory", tarball, root)
	}
	r, _, err := decompressor(f)
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", tarball, err)
	}
	defer r.Close()

	record := opts.DeviceManifest != ""
	var devs []Device
	if record && opts.RecordDevices && inProcess() {
		devs, err = extractAlwaysRecording(ctx, r, abs)
	} else if inProcess() {
		devs, err = extract(ctx, r, abs, record)
	} else {
		devs, err = unpackInNamespace(ctx, r, abs, record)
	}
	if err != nil {
		return fmt.Errorf("unpacking %s into %s: %w", tarball, root, err)
	}
	if record {
		if err := WriteManifest(opts.DeviceManifest, devs); err != nil {
			return fmt.Errorf("unpacking %s: %w", tarball, err)
		}
	}
	return nil
}

// inProcess says whether the tree can be worked on directly: as root (of
// the host or of a namespace). Tests may force it.
var forceInProcess bool

func inProcess() bool { return forceInProcess || os.Geteuid() == 0 }

// cleanName turns a member name into a path relative to the target:
// leading "/" and "./" are dropped, "." or "" is the target itself, and any
// ".." component is an error.
func cleanName(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	if n == "" {
		return "", nil
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("member %q: refusing a name with a \"..\" component", name)
		}
	}
	n = path.Clean(n)
	if n == "." {
		return "", nil
	}
	return n, nil
}

type dirMeta struct {
	rel   string
	mode  uint32
	mtime time.Time
}

// extractor unpacks one tar stream below rootFd.
type extractor struct {
	rootFd  int
	record  bool
	always  bool // record devices even when mknod would work
	devices []Device
	devAt   map[string]Device // recorded devices by relative path
	dirs    []dirMeta
	w       *fileWriter // writes regular files' data and metadata

	// the parent directory of the previous member, kept open
	lastDir string
	lastFd  int
}

// extract unpacks the tar stream r below root and returns the devices it
// recorded instead of creating them (only when record is set).
func extract(ctx context.Context, r io.Reader, root string, record bool) ([]Device, error) {
	return extractWith(ctx, r, root, record, false)
}

// extractAlwaysRecording is extract recording every device node instead of
// creating it.
func extractAlwaysRecording(ctx context.Context, r io.Reader, root string) ([]Device, error) {
	return extractWith(ctx, r, root, true, true)
}

func extractWith(ctx context.Context, r io.Reader, root string, record, always bool) ([]Device, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", root, err)
	}
	defer unix.Close(rootFd)
	x := &extractor{rootFd: rootFd, record: record, always: always, devAt: map[string]Device{}, lastFd: -1}
	defer x.closeLast()
	x.w = newFileWriter()
	defer x.w.Wait()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, damaged("reading the tar stream", err)
		}
		if err := x.w.Err(); err != nil {
			return nil, err
		}
		if err := x.member(h, tr); err != nil {
			return nil, err
		}
	}
	if err := readToEnd(r); err != nil {
		return nil, err
	}
	// Directory modes and times last (and deepest first), once nothing
	// more is created in them.
	x.closeLast()
	if err := x.w.Wait(); err != nil {
		return nil, err
	}
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := x.finishDir(d); err != nil {
			return nil, err
		}
	}
	return x.devices, nil
}

// trailingLimit is how much of the stream after the archive's end
// readToEnd reads. tar pads its end with zeros up to a record, 10 KiB by
// default.
const trailingLimit = 1 << 20

// readToEnd reads what follows the archive's end in r, up to
// trailingLimit. Reaching the end of the stream is what makes a
// decompressor check the stream's own checksum (zstd's content checksum,
// gzip's CRC-32, xz's checks, or the exit status of the program that
// decodes it), so a damaged tarball fails instead of leaving files with
// wrong data behind.
func readToEnd(r io.Reader) error {
	_, err := io.CopyN(io.Discard, r, trailingLimit)
	if err != nil && err != io.EOF {
		return damaged("reading to the end of the compressed stream", err)
	}
	return nil
}

// damaged is a failure to read the tarball itself (not to create what it
// holds), doing what.
func damaged(what string, err error) error {
	return fmt.Errorf("%s: %w (the tarball is damaged or cut short: remove it, and a build with cache-rootfs makes it again)", what, err)
}

func (x *extractor) closeLast() {
	if x.lastFd >= 0 && x.lastFd != x.rootFd {
		unix.Close(x.lastFd)
	}
	x.lastFd, x.lastDir = -1, ""
}

// parent returns an fd of the directory dir (relative to the root),
// resolved inside the root and created (with mode 0755) if missing.
func (x *extractor) parent(dir string) (int, error) {
	if dir == "" || dir == "." {
		return x.rootFd, nil
	}
	if x.lastFd >= 0 && x.lastDir == dir {
		return x.lastFd, nil
	}
	x.closeLast()
	fd, err := x.openDir(dir, true)
	if err != nil {
		return -1, err
	}
	x.lastDir, x.lastFd = dir, fd
	return fd, nil
}

func (x *extractor) openDir(dir string, create bool) (int, error) {
	fd, err := openInRoot(x.rootFd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) && create {
		pdir, base := path.Split(dir)
		pdir = strings.TrimSuffix(pdir, "/")
		var pfd int
		if pdir == "" {
			pfd = x.rootFd
		} else {
			if pfd, err = x.openDir(pdir, true); err != nil {
				return -1, err
			}
			defer unix.Close(pfd)
		}
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("creating %s: %w", dir, err)
		}
		fd, err = openInRoot(x.rootFd, dir, unix.O_PATH|unix.O_DIRECTORY)
	}
	if err != nil {
		return -1, fmt.Errorf("opening directory %s: %w", dir, err)
	}
	return fd, nil
}

// noOpenat2 is set when the kernel (or a seccomp filter) refuses
// openat2; paths are then walked one component at a time and a symlink in
// a directory part of a name is an error.
var noOpenat2 atomic.Bool

// openInRoot opens rel below rootFd, resolving it as if rootFd were "/".
func openInRoot(rootFd int, rel string, flags int) (int, error) {
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(rootFd, rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != unix.ENOSYS && err != unix.EPERM {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	// Fallback: no symlinks at all in the path.
	cur := rootFd
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		fl := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(comps)-1 {
			fl = flags | unix.O_NOFOLLOW | unix.O_CLOEXEC
		}
		fd, err := unix.Openat(cur, c, fl, 0)
		if cur != rootFd {
			unix.Close(cur)
		}
		if err == unix.ELOOP || (err == unix.ENOTDIR && i < len(comps)-1) {
			return -1, fmt.Errorf("%s: a symlink in the path (and this kernel has no openat2 to resolve it inside the root): %w", rel, err)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}

func (x *extractor) member(h *tar.Header, tr io.Reader) error {
	rel, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir:
	default:
		if rel == "" {
			return fmt.Errorf("member %q of type %q names the target directory itself", h.Name, h.Typeflag)
		}
	}
	if rel == "" {
		return x.dir(h, rel, x.rootFd, "")
	}
	dir, base := path.Split(rel)
	pfd, err := x.parent(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return fmt.Errorf("member %q: %w", h.Name, err)
	}
	if err := x.create(h, rel, pfd, base, tr); err != nil {
		return fmt.Errorf("member %q: %w", h.Name, err)
	}
	return nil
}

func (x *extractor) create(h *tar.Header, rel string, pfd int, base string, tr io.Reader) error {
	switch h.Typeflag {
	case tar.TypeDir:
		return x.dir(h, rel, pfd, base)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		fd, err := createFile(pfd, base)
		if err != nil {
			return err
		}
		return x.w.file(fd, h, tr)
	case tar.TypeSymlink:
		return x.symlink(h, pfd, base)
	case tar.TypeLink:
		return x.hardLink(h, rel, pfd, base)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return x.node(h, rel, pfd, base)
	}
	return fmt.Errorf("unsupported member type %q", h.Typeflag)
}

// symlink creates the symbolic link h at base in pfd, replacing what was
// there.
func (x *extractor) symlink(h *tar.Header, pfd int, base string) error {
	err := unix.Symlinkat(h.Linkname, pfd, base)
	if err == unix.EEXIST {
		if err = removeAt(pfd, base); err == nil {
			err = unix.Symlinkat(h.Linkname, pfd, base)
		}
	}
	if err != nil {
		return fmt.Errorf("creating symlink: %w", err)
	}
	return x.finishAt(h, pfd, base, false)
}

// hardLink links base in pfd to h's target, resolved inside the root (a
// link to a recorded device node is recorded as that device).
func (x *extractor) hardLink(h *tar.Header, rel string, pfd int, base string) error {
	trel, err := cleanName(h.Linkname)
	if err != nil || trel == "" {
		return fmt.Errorf("hard link to %q: refused", h.Linkname)
	}
	if trel == rel {
		// GNU tar archives a directory named twice (vmdb2's ". ./boot/efi"
		// over one filesystem) with links of files to themselves.
		var st unix.Stat_t
		return unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if d, ok := x.devAt[trel]; ok {
		d.Path = "/" + rel
		x.devAt[rel] = d
		x.devices = append(x.devices, d)
		return nil
	}
	tdir, tbase := path.Split(trel)
	var tfd int
	if tdir == "" {
		tfd, err = unix.Dup(x.rootFd)
	} else {
		tfd, err = openInRoot(x.rootFd, strings.TrimSuffix(tdir, "/"), unix.O_PATH|unix.O_DIRECTORY)
	}
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", h.Linkname, err)
	}
	defer unix.Close(tfd)
	err = unix.Linkat(tfd, tbase, pfd, base, 0)
	if err == unix.EEXIST {
		if err = removeAt(pfd, base); err == nil {
			err = unix.Linkat(tfd, tbase, pfd, base, 0)
		}
	}
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", h.Linkname, err)
	}
	return nil
}

// node creates the device node or FIFO h at base in pfd; a device node
// that cannot be made (no CAP_MKNOD) is recorded for the manifest.
func (x *extractor) node(h *tar.Header, rel string, pfd int, base string) error {
	perm := uint32(h.Mode) & 0o7777
	mode := perm
	switch h.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
	var err error
	if x.always && h.Typeflag != tar.TypeFifo {
		err = unix.EPERM // recorded, as an unprivileged unpack would
	} else {
		err = unix.Mknodat(pfd, base, mode, int(dev))
	}
	if err == unix.EEXIST {
		if err = removeAt(pfd, base); err == nil {
			err = unix.Mknodat(pfd, base, mode, int(dev))
		}
	}
	if err == unix.EPERM && h.Typeflag != tar.TypeFifo {
		if !x.record {
			return fmt.Errorf("cannot create device node (%v) and no device manifest was given to record it", err)
		}
		d := Device{Path: "/" + rel, Type: "c", Major: uint32(h.Devmajor), Minor: uint32(h.Devminor),
			Mode: fmt.Sprintf("%04o", perm), UID: h.Uid, GID: h.Gid, Mtime: h.ModTime.Unix()}
		if h.Typeflag == tar.TypeBlock {
			d.Type = "b"
		}
		x.devAt[rel] = d
		x.devices = append(x.devices, d)
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating node: %w", err)
	}
	return x.finishAt(h, pfd, base, true)
}

// createFile creates base in pfd for writing, replacing what was there.
func createFile(pfd int, base string) (int, error) {
	const fl = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, fl, 0o600)
	if err == unix.EEXIST {
		if err = removeAt(pfd, base); err == nil {
			fd, err = unix.Openat(pfd, base, fl, 0o600)
		}
	}
	if err != nil {
		return -1, fmt.Errorf("creating file: %w", err)
	}
	return fd, nil
}

// removeAt removes base (a file or an empty directory) from pfd.
func removeAt(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR || err == unix.EPERM {
		if err2 := unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err2 == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("replacing an existing entry: %w", err)
	}
	return nil
}

// dir creates (or keeps) a directory; its mode and mtime are set at the end.
func (x *extractor) dir(h *tar.Header, rel string, pfd int, base string) error {
	var fd int
	var err error
	if rel == "" {
		fd, err = unix.Openat(x.rootFd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else {
		err = unix.Mkdirat(pfd, base, 0o700)
		if err == unix.EEXIST {
			var st unix.Stat_t
			if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err = removeAt(pfd, base); err == nil {
					err = unix.Mkdirat(pfd, base, 0o700)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("creating directory: %w", err)
		}
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
		return err
	}
	perm := uint32(h.Mode) & 0o7777
	// Owner write and search for now, so that members can be created in
	// it even without CAP_DAC_OVERRIDE; the real mode is set at the end.
	if err := unix.Fchmod(fd, perm|0o700); err != nil {
		return err
	}
	if err := setXattrs(h, func(name string, val []byte) error { return unix.Fsetxattr(fd, name, val, 0) }); err != nil {
		return err
	}
	x.dirs = append(x.dirs, dirMeta{rel: rel, mode: perm, mtime: h.ModTime})
	return nil
}

func (x *extractor) finishDir(d dirMeta) error {
	var fd int
	var err error
	if d.rel == "" {
		fd, err = unix.Openat(x.rootFd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else {
		fd, err = openInRoot(x.rootFd, d.rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("directory %s: %w", d.rel, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, d.mode); err != nil {
		return fmt.Errorf("directory %s: %w", d.rel, err)
	}
	if err := unix.UtimesNanoAt(fd, "", times(d.mtime), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("directory %s: %w", d.rel, err)
	}
	return nil
}

// finishAt sets owner, mode (unless a symlink), xattrs and times of a
// symlink or node just created as base in pfd.
func (x *extractor) finishAt(h *tar.Header, pfd int, base string, chmod bool) error {
	if err := unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if chmod {
		if err := unix.Fchmodat(pfd, base, uint32(h.Mode)&0o7777, 0); err != nil {
			return err
		}
	}
	procPath := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
	if err := setXattrs(h, func(name string, val []byte) error { return unix.Lsetxattr(procPath, name, val, 0) }); err != nil {
		return err
	}
	return unix.UtimesNanoAt(pfd, base, times(h.ModTime), unix.AT_SYMLINK_NOFOLLOW)
}

func times(t time.Time) []unix.Timespec {
	ts := unix.NsecToTimespec(t.UnixNano())
	return []unix.Timespec{ts, ts}
}

// xattrsOf returns the extended attributes of a member: SCHILY.xattr.NAME
// records (GNU tar, star, Go) and LIBARCHIVE.xattr.NAME records (bsdtar:
// URL-encoded name, base64 value).
func xattrsOf(h *tar.Header) (map[string][]byte, error) {
	var m map[string][]byte
	for k, v := range h.PAXRecords {
		var name string
		var val []byte
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			name, val = strings.TrimPrefix(k, "SCHILY.xattr."), []byte(v)
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			n, err := url.PathUnescape(strings.TrimPrefix(k, "LIBARCHIVE.xattr."))
			if err != nil {
				return nil, fmt.Errorf("bad xattr record %q", k)
			}
			b, err := base64.StdEncoding.WithPadding(base64.NoPadding).DecodeString(strings.TrimRight(v, "="))
			if err != nil {
				return nil, fmt.Errorf("bad xattr record %q", k)
			}
			name, val = n, b
		default:
			continue
		}
		if m == nil {
			m = map[string][]byte{}
		}
		if _, dup := m[name]; !dup || strings.HasPrefix(k, "SCHILY.") {
			m[name] = val
		}
	}
	return m, nil
}

func setXattrs(h *tar.Header, set func(string, []byte) error) error {
	if len(h.PAXRecords) == 0 {
		return nil
	}
	m, err := xattrsOf(h)
	if err != nil {
		return err
	}
	// In name order: a filesystem lists xattrs in the order they were set,
	// and mke2fs -d copies them in that order, so a map's random order
	// would make images differ from build to build.
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := set(name, m[name]); err != nil {
			return fmt.Errorf("setting xattr %s: %w", name, err)
		}
	}
	return nil
}
