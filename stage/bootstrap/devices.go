package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/stage"
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

// devDir creates the target's /dev if missing and checks that it is a
// directory of the target: the namespace mounts over host paths below it,
// which must not lead anywhere else.
func devDir(r *stage.Root) error {
	if err := r.Mkdirs("dev", 0o755); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if fi, err := r.Lstat("dev"); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	} else if !fi.IsDir() {
		what := "not a directory"
		if fi.Mode()&os.ModeSymlink != 0 {
			what = "a symbolic link"
		}
		return fmt.Errorf("bootstrap: the target's /dev is %s: remove it, or install into an empty target", what)
	}
	return nil
}

// preparePlaceholders creates target/dev with empty regular files for the
// static device nodes: those in boundDevices get the host's nodes
// bind-mounted over them inside the namespace, the others (console, ptmx)
// only stop debootstrap from trying mknod, which the namespace refuses. It
// returns the bind mounts (host paths) and the placeholders to remove
// afterwards (paths in target). Nothing already at a placeholder's name,
// not even a link, is replaced.
func preparePlaceholders(target string) (binds [][2]string, created []string, err error) {
	r, err := stage.OpenRoot(target)
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: %w", err)
	}
	defer r.Close()
	if err := devDir(r); err != nil {
		return nil, nil, err
	}
	bound := map[string]bool{}
	for _, n := range boundDevices {
		bound[n] = true
	}
	for _, d := range staticDevices {
		p := "dev/" + d.name
		err := r.CreateNew(p, nil, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue // something is there already: leave it alone
		}
		if err != nil {
			return binds, created, fmt.Errorf("bootstrap: %w", err)
		}
		created = append(created, p)
		if bound[d.name] {
			if _, err := os.Stat("/dev/" + d.name); err == nil {
				// dev is a directory and the placeholder a file this
				// call created: the host path leads to it.
				binds = append(binds, [2]string{"/dev/" + d.name, filepath.Join(target, p)})
			}
		}
	}
	return binds, created, nil
}

// removePlaceholders removes the placeholders (paths in target) that are
// still empty regular files.
func removePlaceholders(target string, created []string) error {
	if len(created) == 0 {
		return nil
	}
	r, err := stage.OpenRoot(target)
	if err != nil {
		return fmt.Errorf("bootstrap: removing the /dev placeholders: %w", err)
	}
	defer r.Close()
	var errs []error
	for _, p := range created {
		st, err := r.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
			continue
		}
		if err := r.Remove(p); err != nil {
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
// manifest. Every path is resolved inside the target.
func finishDev(target, manifest string, mtime int64, record bool) ([]rootfs.Device, error) {
	r, err := stage.OpenRoot(target)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	defer r.Close()
	if err := devDir(r); err != nil {
		return nil, err
	}
	for _, d := range devDirs {
		if err := r.Mkdirs("dev/"+d, 0o755); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	for _, l := range devLinks {
		p := "dev/" + l[0]
		if _, err := r.Lstat(p); err == nil {
			continue
		}
		if err := r.Symlink(l[1], p, os.Getuid(), os.Getgid()); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	var missing []rootfs.Device
	tryMknod := canMknod() && !record
	for _, d := range StandardDevices(mtime) {
		if fi, err := r.Lstat(d.Path); err == nil {
			if st, ok := fi.Sys().(*unix.Stat_t); ok && st.Mode&unix.S_IFMT == unix.S_IFCHR &&
				unix.Major(st.Rdev) == d.Major && unix.Minor(st.Rdev) == d.Minor {
				continue // a real node already
			}
			// A placeholder, or ptmx as debootstrap's fallback
			// symlink: replace it.
			if err := r.Remove(d.Path); err != nil {
				return nil, fmt.Errorf("bootstrap: replacing %s: %w", d.Path, err)
			}
		}
		if tryMknod {
			err := mknod(r, d)
			if err == nil {
				continue
			}
			if !errors.Is(err, unix.EPERM) {
				return nil, fmt.Errorf("bootstrap: creating %s: %w", d.Path, err)
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

// mknod creates the device node d in r with its mode (not less the
// umask), owner and time.
func mknod(r *stage.Root, d rootfs.Device) error {
	mode, err := d.InodeMode()
	if err != nil {
		return err
	}
	if err := r.Mknod(d.Path, mode, unix.Mkdev(d.Major, d.Minor)); err != nil {
		return err
	}
	perm, _ := d.Perm()
	if err := r.Chmod(d.Path, stage.ModeFromUnix(int64(perm))); err != nil {
		return err
	}
	if err := r.Lchown(d.Path, d.UID, d.GID); err != nil {
		return err
	}
	return r.Chtimes(d.Path, time.Unix(d.Mtime, 0))
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
