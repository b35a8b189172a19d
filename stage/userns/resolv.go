package userns

import (
	"bytes"
	"fmt"
	"io"
	"os"
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

// lendResolvConf writes host into path: a regular file of the stage, or a
// fresh file in the namespace's own /run, which needs no giving back.
func lendResolvConf(rep *reporter, path string, host []byte) error {
	if strings.HasPrefix(path, "/run/") {
		return rewrite(path, host)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	own, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	// Reported before the write: a kill in between still gets it undone.
	rep.send(report{Created: path, Lent: &lentFile{
		Ino: st.Ino, Own: own, Lent: host,
		Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(),
	}})
	if err := rewrite(path, host); err != nil {
		return fmt.Errorf("lending the host's resolv.conf to %s: %w", path, err)
	}
	return nil
}

// rewrite replaces the content of the file at path in place (same inode,
// owner and mode).
func rewrite(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// giveBack restores a lent file base of the directory dfd (already
// checked to be a regular file with stat st) if it still is the same file
// with the lent content.
func giveBack(dfd int, base string, st *unix.Stat_t, l *lentFile) error {
	if st.Ino != l.Ino {
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
