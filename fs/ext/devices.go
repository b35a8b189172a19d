package ext

import (
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Device is a device node to add to a built filesystem: one that could not
// be created in the staging tree (mknod is refused in an unprivileged user
// namespace) but that the image must hold, such as /dev/null.
type Device struct {
	Path         string // absolute path inside the filesystem
	Block        bool   // block device; else character device
	Major, Minor uint32
	Perm         os.FileMode // permission bits (and setuid/setgid/sticky)
	UID, GID     int
	Mtime        time.Time
}

var statTimeRE = regexp.MustCompile(`(?m)^\s*(ctime|mtime): 0x([0-9a-f]+):([0-9a-f]+)`)

// AddDevices creates devs in the ext filesystem at offset of image with
// debugfs, with their owners, modes and times. Devices whose directory does
// not exist in the filesystem are skipped and returned. The directories
// that receive devices keep their times, so the result is as reproducible
// as the filesystem was: the new inodes' other times are set to epoch (or
// their mtime when epoch is zero).
func AddDevices(ctx context.Context, run Runner, image string, offset int64, devs []Device, epoch time.Time) (skipped []Device, err error) {
	if len(devs) == 0 {
		return nil, nil
	}
	target := fmt.Sprintf("%s?offset=%d", image, offset)
	env := Env(Options{Time: epoch})
	debugfs := func(args ...string) (string, error) {
		return fstool.Run(ctx, run, append([]string{"debugfs"}, args...), env)
	}
	byDir := map[string][]Device{}
	for _, d := range devs {
		p := path.Clean("/" + d.Path)
		if strings.ContainsAny(p, " \t\n\"") {
			return nil, fmt.Errorf("device node %q: debugfs cannot handle this name", d.Path)
		}
		d.Path = p
		byDir[path.Dir(p)] = append(byDir[path.Dir(p)], d)
	}
	dirs := make([]string, 0, len(byDir))
	for dir := range byDir {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	var script strings.Builder
	for _, dir := range dirs {
		out, err := debugfs("-R", "stat "+dir, target)
		times := statTimeRE.FindAllStringSubmatch(out, -1)
		if err != nil || len(times) == 0 {
			skipped = append(skipped, byDir[dir]...)
			continue
		}
		list := byDir[dir]
		sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
		for _, d := range list {
			kind, typeBits := "c", 0o020000
			if d.Block {
				kind, typeBits = "b", 0o060000
			}
			mode := typeBits | int(d.Perm.Perm())
			if d.Perm&os.ModeSetuid != 0 {
				mode |= 0o4000
			}
			if d.Perm&os.ModeSetgid != 0 {
				mode |= 0o2000
			}
			if d.Perm&os.ModeSticky != 0 {
				mode |= 0o1000
			}
			mtime := d.Mtime
			if !epoch.IsZero() && mtime.After(epoch) {
				mtime = epoch
			}
			other := epoch
			if other.IsZero() {
				other = mtime
			}
			fmt.Fprintf(&script, "cd %s\nmknod %s %s %d %d\ncd /\n", dir, path.Base(d.Path), kind, d.Major, d.Minor)
			fmt.Fprintf(&script, "set_inode_field %s mode 0%o\n", d.Path, mode)
			fmt.Fprintf(&script, "set_inode_field %s uid %d\nset_inode_field %s gid %d\n", d.Path, d.UID, d.Path, d.GID)
			fmt.Fprintf(&script, "set_inode_field %s mtime @%d\n", d.Path, mtime.Unix())
			for _, f := range []string{"atime", "ctime", "crtime"} {
				fmt.Fprintf(&script, "set_inode_field %s %s @%d\n", d.Path, f, other.Unix())
			}
		}
		// Adding entries changed the directory's times: put them back.
		for _, m := range times {
			fmt.Fprintf(&script, "set_inode_field %s %s 0x%s\nset_inode_field %s %s_extra 0x%s\n", dir, m[1], m[2], dir, m[1], m[3])
		}
	}
	if script.Len() == 0 {
		return skipped, nil
	}
	f, err := os.CreateTemp("", "vmdb2-debugfs-*.cmd")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(script.String()); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return nil, err
	}
	var stdout, stderr strings.Builder
	if run == nil {
		run = fstool.Exec
	}
	if err := run(ctx, fstool.Command{Args: []string{"debugfs", "-w", "-f", f.Name(), target}, Env: env, Stdout: &stdout, Stderr: &stderr}); err != nil {
		return nil, fmt.Errorf("adding device nodes with debugfs: %w: %s", err, stderr.String())
	}
	// debugfs reports a failed request on stderr but still exits 0.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			return nil, fmt.Errorf("adding device nodes with debugfs: %s", line)
		}
	}
	return skipped, nil
}
