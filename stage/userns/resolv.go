package userns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// The host's resolv.conf is lent to the stage's, not bind-mounted over it:
// a bind mount cannot be renamed over or unlinked (EBUSY), so packages
// that replace /etc/resolv.conf (systemd-resolved, resolvconf) and
// Ansible's template or copy modules failed. Instead init writes the
// host's content into the stage's file for the command, and Run gives the
// file its own content and times back once every process of the namespace
// is gone (also after a kill), unless the command replaced the file or
// wrote something else, which then stays, as it would with vmdb2.

// maxResolv is the largest resolv.conf lent to or given back: the report
// that carries both contents to Run must fit in one of its lines.
const maxResolv = 64 << 10

// lendResolv writes host into the stage's /etc/resolv.conf: a regular file
// on the stage's own files (reported first, so that Run gives it its own
// content and times back), or a fresh file in the namespace's /run when
// the image's is a dangling link there (systemd-resolved's). Anything else
// (no resolv.conf, a FIFO, a link onto /proc, /sys, a device or a bind) is
// left alone: the command then reads what the image gives it.
func (s *stageFS) lendResolv(host []byte) error {
	const p = "/etc/resolv.conf"
	if len(host) > maxResolv {
		return nil
	}
	fd, err := s.resolve(p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return s.lendInRun(host)
	}
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > maxResolv {
		return nil
	}
	if id, err := mountOf(fd); err != nil || !s.own[id] {
		return nil
	}
	// Reopen to write; the same file, or nothing.
	rw, err := s.resolve(p, unix.O_RDWR|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return fmt.Errorf("lending the host's resolv.conf to %s: %w", p, err)
	}
	f := os.NewFile(uintptr(rw), p)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(rw, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return nil
	}
	own, err := io.ReadAll(io.LimitReader(f, maxResolv+1))
	if err != nil || len(own) > maxResolv {
		return nil
	}
	// Reported before the write: a kill in between still gets it undone.
	s.rep.send(report{Created: p, Lent: &lentFile{
		Dev: st.Dev, Ino: st.Ino, Own: own, Lent: host,
		Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(),
	}})
	if err := f.Truncate(0); err == nil {
		err = writeAll(rw, host)
	}
	if err != nil {
		return fmt.Errorf("lending the host's resolv.conf to %s: %w", p, err)
	}
	return nil
}

// lendInRun writes host into a new file of the namespace's /run, where the
// image's /etc/resolv.conf, a dangling link, points (read as text: a link
// that only leads there through other links gets nothing). The file goes
// with the tmpfs; there is nothing to give back.
func (s *stageFS) lendInRun(host []byte) error {
	etc, err := s.resolve("/etc", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil
	}
	link, err := readlinkat(etc, "resolv.conf")
	unix.Close(etc)
	if err != nil {
		return nil
	}
	if !path.IsAbs(link) {
		link = path.Join("/etc", link)
	}
	rest, ok := strings.CutPrefix(path.Clean(link), "/run/")
	if !ok {
		return nil
	}
	dir, err := s.resolve("/run", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil
	}
	if id, err := mountOf(dir); err != nil || !s.fresh[id] {
		unix.Close(dir)
		return nil
	}
	parts := strings.Split(rest, "/")
	for _, name := range parts[:len(parts)-1] {
		if err := unix.Mkdirat(dir, name, 0o755); err != nil && err != unix.EEXIST {
			unix.Close(dir)
			return nil
		}
		next, err := unix.Openat2(dir, name, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV,
		})
		unix.Close(dir)
		if err != nil {
			return nil
		}
		dir = next
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, parts[len(parts)-1], unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	if err := writeAll(fd, host); err != nil {
		return fmt.Errorf("lending the host's resolv.conf to /run/%s: %w", rest, err)
	}
	return nil
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// giveBack restores a lent file base of the directory dfd (already
// checked to be a regular file with stat st) if it still is the same file
// with the lent content.
func giveBack(dfd int, base string, st *unix.Stat_t, l *lentFile) error {
	if st.Ino != l.Ino || st.Dev != l.Dev {
		return nil // replaced by the command: its file stays
	}
	fd, err := unix.Openat(dfd, base, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.EACCES {
		// A read-only file (init, root of the namespace, could write it;
		// its owner here can only after making it writable for a moment).
		if err = unix.Fchmodat(dfd, base, (st.Mode&0o7777)|0o200, 0); err == nil {
			fd, err = unix.Openat(dfd, base, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if cerr := unix.Fchmodat(dfd, base, st.Mode&0o7777, 0); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(len(l.Lent))+1))
	if err != nil {
		return err
	}
	if !bytes.Equal(b, l.Lent) {
		return nil // written by the command (or never lent): stays
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(l.Own, 0); err != nil {
		return err
	}
	return unix.UtimesNanoAt(fd, "", []unix.Timespec{unix.NsecToTimespec(l.Atime), unix.NsecToTimespec(l.Mtime)}, unix.AT_EMPTY_PATH)
}
