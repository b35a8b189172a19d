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
	byDir, dirs, err := devicesByDir(devs)
	if err != nil {
		return nil, err
	}
	var script strings.Builder
	for _, dir := range dirs {
		out, err := fstool.Run(ctx, run, []string{"debugfs", "-R", "stat " + dir, target}, env)
		times := statTimeRE.FindAllStringSubmatch(out, -1)
		if err != nil || len(times) == 0 {
			skipped = append(skipped, byDir[dir]...)
			continue
		}
		for _, d := range byDir[dir] {
			writeNode(&script, dir, d, epoch)
		}
		// Adding entries changed the directory's times: put them back.
		for _, m := range times {
			fmt.Fprintf(&script, "set_inode_field %s %s 0x%s\nset_inode_field %s %s_extra 0x%s\n", dir, m[1], m[2], dir, m[1], m[3])
		}
	}
	if script.Len() == 0 {
		return skipped, nil
	}
	if err := runDebugfsScript(ctx, run, target, env, script.String()); err != nil {
		return nil, err
	}
	return skipped, nil
}

// devicesByDir groups devs by their directory, each group sorted by path,
// and returns the directories sorted.
func devicesByDir(devs []Device) (map[string][]Device, []string, error) {
	byDir := map[string][]Device{}
	for _, d := range devs {
		p := path.Clean("/" + d.Path)
		if strings.ContainsAny(p, " \t\n\"") {
			return nil, nil, fmt.Errorf("device node %q: debugfs cannot handle this name", d.Path)
		}
		d.Path = p
		byDir[path.Dir(p)] = append(byDir[path.Dir(p)], d)
	}
	dirs := make([]string, 0, len(byDir))
	for dir, list := range byDir {
		dirs = append(dirs, dir)
		sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	}
	sort.Strings(dirs)
	return byDir, dirs, nil
}

// writeNode writes the debugfs requests that make d in dir with its mode,
// owner and times (mtime clamped to epoch, the others epoch when set).
func writeNode(script *strings.Builder, dir string, d Device, epoch time.Time) {
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
	fmt.Fprintf(script, "cd %s\nmknod %s %s %d %d\ncd /\n", dir, path.Base(d.Path), kind, d.Major, d.Minor)
	fmt.Fprintf(script, "set_inode_field %s mode 0%o\n", d.Path, mode)
	fmt.Fprintf(script, "set_inode_field %s uid %d\nset_inode_field %s gid %d\n", d.Path, d.UID, d.Path, d.GID)
	fmt.Fprintf(script, "set_inode_field %s mtime @%d\n", d.Path, mtime.Unix())
	for _, f := range []string{"atime", "ctime", "crtime"} {
		fmt.Fprintf(script, "set_inode_field %s %s @%d\n", d.Path, f, other.Unix())
	}
}

// runDebugfsScript runs script's requests with `debugfs -w` on target.
func runDebugfsScript(ctx context.Context, run Runner, target string, env []string, script string) error {
	f, err := os.CreateTemp("", "vmdb2-debugfs-*.cmd")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	var stdout, stderr strings.Builder
	if run == nil {
		run = fstool.Exec
	}
	if err := run(ctx, fstool.Command{Args: []string{"debugfs", "-w", "-f", f.Name(), target}, Env: env, Stdout: &stdout, Stderr: &stderr}); err != nil {
		return fmt.Errorf("adding device nodes with debugfs: %w: %s", err, stderr.String())
	}
	// debugfs reports a failed request on stderr but still exits 0.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			return fmt.Errorf("adding device nodes with debugfs: %s", line)
		}
	}
	return nil
}
