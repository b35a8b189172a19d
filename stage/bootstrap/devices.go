package bootstrap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/stage/rootfs"
)

// devNode is one static device node of a Debian base system.
type devNode struct {
	name         string // under /dev
	major, minor uint32
}

// staticDevices are the nodes debootstrap 1.0.128 creates in /dev
// (setup_devices_simple), all character devices, mode 0666, root:root.
// mmdebstrap creates the same set.
var staticDevices = []devNode{
	{"console", 5, 1},
	{"full", 1, 7},
	{"null", 1, 3},
	{"ptmx", 5, 2},
	{"random", 1, 8},
	{"tty", 5, 0},
	{"urandom", 1, 9},
	{"zero", 1, 5},
}

// boundDevices are the host nodes bind-mounted over placeholders in the
// target's /dev while the engine runs, so that maintainer scripts writing
// to /dev/null reach the real device.
var boundDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// devLinks and devDirs are the rest of debootstrap's /dev.
var devLinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
}
var devDirs = []string{"pts", "shm"}

// StandardDevices returns the device nodes every Debian base system has
// in /dev (debootstrap's list), as device-manifest entries with the given
// modification time (seconds since the epoch).
func StandardDevices(mtime int64) []rootfs.Device {
	devs := make([]rootfs.Device, 0, len(staticDevices))
	for _, d := range staticDevices {
		devs = append(devs, rootfs.Device{
			Path: "/dev/" + d.name, Type: "c", Major: d.major, Minor: d.minor,
			Mode: "0666", UID: 0, GID: 0, Mtime: mtime,
		})
	}
	return devs
}

// canMknod reports whether this process may create device nodes on the
// host: only root outside a user namespace, with CAP_MKNOD. It is a guess
// made before starting; finishDev learns the truth.
func canMknod() bool { return os.Geteuid() == 0 }

// preparePlaceholders creates target/dev with empty regular files for the
// static device nodes: those in boundDevices get the host's nodes
// bind-mounted over them inside the namespace, the others (console, ptmx)
// only stop debootstrap from trying mknod, which the namespace refuses. It
// returns the bind mounts (host paths) and the placeholders to remove
// afterwards (paths in target).
func preparePlaceholders(target string) (binds [][2]string, created []string, err error) {
	dev := filepath.Join(target, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return nil, nil, fmt.Errorf("bootstrap: %w", err)
	}
	bound := map[string]bool{}
	for _, n := range boundDevices {
		bound[n] = true
	}
	for _, d := range staticDevices {
		p := filepath.Join(dev, d.name)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if errors.Is(err, os.ErrExist) {
			continue // something is there already: leave it alone
		}
		if err != nil {
			return binds, created, fmt.Errorf("bootstrap: %w", err)
		}
		f.Close()
		created = append(created, "dev/"+d.name)
		if bound[d.name] {
			if _, err := os.Stat("/dev/" + d.name); err == nil {
				binds = append(binds, [2]string{"/dev/" + d.name, p})
			}
		}
	}
	return binds, created, nil
}

// removePlaceholders removes the placeholders (paths in target) that are
// still empty regular files.
func removePlaceholders(target string, created []string) error {
	var errs []error
	for _, p := range created {
		p = filepath.Join(target, p)
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bootstrap: removing the /dev placeholders: %w", errors.Join(errs...))
	}
	return nil
}

// finishDev completes target/dev as debootstrap leaves it when it runs as
// real root: the static nodes (created with mknod when this process can,
// else recorded in the device manifest), the fd/stdin/stdout/stderr links
// and the pts and shm directories. It returns the devices recorded in the
// manifest.
func finishDev(target, manifest string, mtime int64, record bool) ([]rootfs.Device, error) {
	dev := filepath.Join(target, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	for _, d := range devDirs {
		if err := os.MkdirAll(filepath.Join(dev, d), 0o755); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	for _, l := range devLinks {
		p := filepath.Join(dev, l[0])
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Symlink(l[1], p); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	var missing []rootfs.Device
	tryMknod := canMknod() && !record
	for _, d := range StandardDevices(mtime) {
		p := filepath.Join(target, d.Path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(uint64(st.Rdev)) == d.Major && unix.Minor(uint64(st.Rdev)) == d.Minor {
				continue // a real node already
			}
			// A placeholder, or ptmx as debootstrap's fallback
			// symlink: replace it.
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("bootstrap: replacing %s: %w", p, err)
			}
		}
		if tryMknod {
			err := mknod(p, d)
			if err == nil {
				continue
			}
			if !errors.Is(err, unix.EPERM) {
				return nil, fmt.Errorf("bootstrap: creating %s: %w", p, err)
			}
			tryMknod = false
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if manifest == "" {
		return missing, fmt.Errorf("bootstrap: this process cannot create device nodes (%s): give a device manifest file to record them in", devNames(missing))
	}
	if err := mergeManifest(manifest, missing); err != nil {
		return missing, err
	}
	return missing, nil
}

func mknod(p string, d rootfs.Device) error {
	mode, err := d.InodeMode()
	if err != nil {
		return err
	}
	if err := unix.Mknod(p, mode, int(unix.Mkdev(d.Major, d.Minor))); err != nil {
		return err
	}
	perm, _ := d.Perm()
	if err := unix.Chmod(p, perm); err != nil { // undo the umask
		return err
	}
	if err := unix.Lchown(p, d.UID, d.GID); err != nil {
		return err
	}
	t := unix.NsecToTimespec(time.Unix(d.Mtime, 0).UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}

func devNames(devs []rootfs.Device) string {
	var n []string
	for _, d := range devs {
		n = append(n, d.Path)
	}
	return strings.Join(n, ", ")
}

// mergeManifest adds devs to the manifest file, replacing entries for the
// same paths and keeping the others.
func mergeManifest(file string, devs []rootfs.Device) error {
	old, err := rootfs.ReadManifest(file)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	byPath := map[string]rootfs.Device{}
	for _, d := range old {
		byPath[d.Path] = d
	}
	for _, d := range devs {
		byPath[d.Path] = d
	}
	all := make([]rootfs.Device, 0, len(byPath))
	for _, d := range byPath {
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	if err := rootfs.WriteManifest(file, all); err != nil {
		return fmt.Errorf("bootstrap: writing the device manifest: %w", err)
	}
	return nil
}

// buildTime returns SOURCE_DATE_EPOCH from env (later entries win) or the
// process environment, else the current time, in seconds.
func buildTime(env []string) int64 {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	for _, kv := range env {
		if s, ok := strings.CutPrefix(kv, "SOURCE_DATE_EPOCH="); ok {
			v = s
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return n
	}
	return time.Now().Unix()
}
