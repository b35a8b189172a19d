package rootfs

import "golang.org/x/sys/unix"

func setXattr(p, name, val string) error { return unix.Lsetxattr(p, name, []byte(val), 0) }

func mknod(p string, typ byte, perm uint32, maj, min uint32) error {
	mode := perm | unix.S_IFCHR
	if typ == 'p' {
		mode = perm | unix.S_IFIFO
	}
	if err := unix.Mknod(p, mode, int(unix.Mkdev(maj, min))); err != nil {
		return err
	}
	return unix.Chmod(p, perm)
}
