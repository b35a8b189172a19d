package stage

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FileOp is one file operation of a file step (create-dir, create-file,
// copy-file, copy-dir) on a root filesystem's staging directory. It is a
// plain value so that it can be sent to a helper inside the build's user
// namespace when the builder is not root.
type FileOp struct {
	Op    string // "create-dir", "create-file", "copy-file", "copy-dir", "move-contents" (of Root into Src), "symlink" (Path -> Src), "remove-noise" (see noiseFiles)
	Root  string // host path of the root filesystem's staging directory
	Path  string // path inside the image
	Src   string // host path (copy-file, copy-dir), absolute
	Perm  int64
	Umask int64 // copy-dir
	UID   int
	GID   int
	User  string // copy-dir: name looked up in the image's /etc/passwd
	Group string // copy-dir: name looked up in the image's /etc/group
	// Contents is create-file's text.
	Contents []byte
}

// apply performs the operation in this process.
func (op FileOp) apply() error {
	switch op.Op {
	case "move-contents":
		return moveContents(op.Root, op.Src)
	case "remove-noise":
		return removeNoise(op.Root)
	}
	r, err := OpenRoot(op.Root)
	if err != nil {
		return err
	}
	defer r.Close()
	own := Ownership{Mode: ModeFromUnix(op.Perm), UID: op.UID, GID: op.GID}
	switch op.Op {
	case "create-dir":
		_, err := r.MkdirAll(op.Path, own)
		return err
	case "create-file":
		return r.WriteFile(op.Path, bytes.NewReader(op.Contents), own)
	case "copy-file":
		// O_NONBLOCK: a FIFO as the source must not wait for a writer.
		src, err := os.OpenFile(op.Src, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("copy-file source: %w", err)
		}
		defer src.Close()
		if fi, err := src.Stat(); err == nil && fi.IsDir() {
			return fmt.Errorf("copy-file source %s is a directory; use copy-dir", op.Src)
		} else if err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("copy-file source %s is not a regular file (%v); copy-file copies regular files, as vmdb2's does", op.Src, fi.Mode().Type())
		}
		if _, err := r.MkdirAll(path.Dir(rel(op.Path)), Ownership{Mode: 0o755}); err != nil {
			return err
		}
		return r.WriteFile(op.Path, src, own)
	case "copy-dir":
		return op.copyDir(r)
	case "symlink":
		return r.Symlink(op.Src, op.Path, op.UID, op.GID)
	}
	return fmt.Errorf("unknown file operation %q", op.Op)
}

// copyDir copies a host tree into the image as vmdb2's copy-dir does:
// missing target directories get perm&^umask, copied directories and files
// keep their source mode &^umask, everything is owned by uid:gid (or the
// image's user/group), existing directories are left alone, files are
// overwritten. Symbolic links are copied as links (vmdb2 follows links to
// files and turns links to directories into empty directories).
func (op FileOp) copyDir(r *Root) error {
	uid, gid := op.UID, op.GID
	var err error
	if op.User != "" {
		if uid, err = lookupID(r, "/etc/passwd", op.User); err != nil {
			return err
		}
	}
	if op.Group != "" {
		if gid, err = lookupID(r, "/etc/group", op.Group); err != nil {
			return err
		}
	}
	umask := os.FileMode(op.Umask) & 0o777
	target := strings.TrimSuffix(op.Path, "/")
	src := strings.TrimSuffix(op.Src, "/")
	if _, err := r.MkdirAll(target, Ownership{Mode: ModeFromUnix(op.Perm) &^ umask, UID: uid, GID: gid}); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy-dir source: %w", err)
		}
		relPath, _ := filepath.Rel(src, p)
		if relPath == "." {
			return nil
		}
		dst := path.Join(target, filepath.ToSlash(relPath))
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		own := Ownership{Mode: (info.Mode() &^ umask) & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky), UID: uid, GID: gid}
		switch {
		case info.IsDir():
			if _, err := r.Lstat(dst); err == nil {
				return nil
			}
			_, err := r.MkdirAll(dst, own)
			return err
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return r.Symlink(link, dst, uid, gid)
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return r.WriteFile(dst, f, own)
		}
		return fmt.Errorf("copy-dir: %s is neither a file, a directory nor a symlink", p)
	})
}

// moveContents moves every entry of dir into dest (on the same
// filesystem), leaving dir empty: how a nested filesystem's files leave its
// parent's tree once they are in their own filesystem.
func moveContents(dir, dest string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dest, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// lookupID finds name's numeric id (third field) in an image file such as
// /etc/passwd.
func lookupID(r *Root, file, name string) (int, error) {
	data, err := r.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("looking up %q: %w", name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && fields[0] == name {
			id, err := strconv.Atoi(fields[2])
			if err != nil {
				return 0, fmt.Errorf("bad id for %q in %s: %q", name, file, fields[2])
			}
			return id, nil
		}
	}
	return 0, fmt.Errorf("Failed to find entry for %q in %s of the image", name, file)
}

// readAllLimited reads at most n bytes, for helper input.
func readAllLimited(r io.Reader, n int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > n {
		return nil, fmt.Errorf("input larger than %d bytes", n)
	}
	return data, nil
}
