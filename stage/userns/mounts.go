package userns

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The build's own mount points (Cmd.MountPoints) and the mounts a command
// leaves under the build's tree (Cmd.KeepMounts, Carry). Both are made in
// the namespace only, on paths resolved beneath the tree by the kernel.

// openBeneath opens the image path p of the tree top (O_PATH) without
// following any symbolic link or leaving the tree: a tag's mount point is
// recorded without links, so one planted since is refused, never followed.
func openBeneath(top int, p string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(top, rel(p), &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err == unix.ELOOP || err == unix.EXDEV {
			return -1, fmt.Errorf("%s in the image: a symbolic link is on the way (a mount point must stay a directory)", p)
		}
		if err != nil {
			return -1, resolveErr(p, err)
		}
		return fd, nil
	}
}

// selfBind makes the directory p of the tree top a mount point of the
// namespace: a private recursive bind of itself onto itself, so that
// mountpoint, findmnt and /proc/self/mountinfo see it mounted, as on a
// build that mounts real filesystems. It returns the new mount's id. Open
// top again for each call: a path walk does not enter a mount stacked on
// its starting directory.
func selfBind(top int, p string) (uint64, error) {
	fd, err := openBeneath(top, p)
	if err != nil {
		return 0, fmt.Errorf("mount point %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := isKind(fd, p, true); err != nil {
		return 0, fmt.Errorf("mount point %s: %w", p, err)
	}
	mnt, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return 0, fmt.Errorf("bind-mounting the mount point %s onto itself: %w", p, err)
	}
	defer unix.Close(mnt)
	attr := unix.MountAttr{Propagation: unix.MS_PRIVATE}
	if err := unix.MountSetattr(mnt, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return 0, fmt.Errorf("making the bind of the mount point %s private: %w", p, err)
	}
	if err := unix.MoveMount(mnt, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return 0, fmt.Errorf("bind-mounting the mount point %s onto itself: %w", p, err)
	}
	return mountOf(mnt)
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	id, parent int
	point      string // as the reading process sees it
	fstype     string
}

func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if e, ok := parseMountinfo(sc.Text()); ok {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// parseMountinfo reads "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - TYPE SRC SUPER".
func parseMountinfo(line string) (mountEntry, bool) {
	f := strings.Fields(line)
	if len(f) < 7 {
		return mountEntry{}, false
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return mountEntry{}, false
	}
	e := mountEntry{id: id, parent: parent, point: unescapeMountinfo(f[4])}
	for i := 6; i < len(f)-1; i++ {
		if f[i] == "-" {
			e.fstype = f[i+1]
			return e, true
		}
	}
	return mountEntry{}, false
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountIDs is the set of the namespace's mounts now.
func mountIDs() (map[int]bool, error) {
	ms, err := readMountinfo()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace's mounts: %w", err)
	}
	ids := map[int]bool{}
	for _, m := range ms {
		ids[m.id] = true
	}
	return ids, nil
}

// inTree returns the image path of the mount point point (as mountinfo
// shows it) in the tree at tree, or false when it is not inside.
func inTree(point, tree string) (string, bool) {
	if tree == "/" {
		return point, strings.HasPrefix(point, "/")
	}
	if point == tree {
		return "/", true
	}
	rest, ok := strings.CutPrefix(point, tree+"/")
	return "/" + rest, ok
}

// newTopMounts returns the mounts inside tree that are not in before and
// whose parent mount is not one of them either (a recursive copy of those
// takes the rest along), by image path; for one path stacked twice, the
// topmost (mountinfo lists a mount after the one it covers).
func newTopMounts(ms []mountEntry, before map[int]bool, tree string) []mountEntry {
	fresh := map[int]bool{}
	for _, m := range ms {
		if _, ok := inTree(m.point, tree); ok && !before[m.id] {
			fresh[m.id] = true
		}
	}
	var out []mountEntry
	at := map[string]int{}
	for _, m := range ms {
		if !fresh[m.id] || fresh[m.parent] {
			continue
		}
		p, _ := inTree(m.point, tree)
		m.point = p
		if i, ok := at[p]; ok {
			out[i] = m
			continue
		}
		at[p] = len(out)
		out = append(out, m)
	}
	return out
}

// keeper knows the namespace's mounts from before the carried ones were
// attached, to find at the end what is left in the tree (KeepMounts).
type keeper struct {
	tree   string
	before map[int]bool
}

// openTree opens the tree's top as it is now (the topmost mount there).
func openTree(tree string) (int, error) {
	fd, err := unix.Open(tree, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the tree %s: %w", tree, err)
	}
	return fd, nil
}

// treeMountPoints makes cfg.Tree's mount points mounted, for a command
// without a Root.
func treeMountPoints(cfg *config) error {
	for _, p := range cfg.MountPoints {
		top, err := openTree(cfg.Tree)
		if err != nil {
			return err
		}
		_, err = selfBind(top, p)
		unix.Close(top)
		if err != nil {
			return err
		}
	}
	return nil
}

// treeCarried attaches the carried mounts in cfg.Tree, for a command
// without a Root, and with KeepMounts returns what finds the kept ones.
func treeCarried(cfg *config, fds []int) (*keeper, error) {
	var k *keeper
	if cfg.KeepMounts {
		before, err := mountIDs()
		if err != nil {
			return nil, err
		}
		k = &keeper{tree: cfg.Tree, before: before}
	}
	copies := noCopies(len(cfg.Carried))
	defer closeAll(copies)
	for i, info := range cfg.Carried {
		if err := attachInTree(cfg.Tree, info, fds[i]); err != nil {
			return nil, errors.Join(err, returnCarried(fdCarry, copies))
		}
		if !info.Proc {
			if err := copyBack(copies, i, fds[i], info.Target); err != nil {
				return nil, errors.Join(err, returnCarried(fdCarry, copies))
			}
		}
	}
	return k, returnCarried(fdCarry, copies)
}

// noCopies is the copies of n carried mounts before any is attached.
func noCopies(n int) []int {
	copies := make([]int, n)
	for i := range copies {
		copies[i] = -1
	}
	return copies
}

// copyBack sets copies[i] to a copy of the carried mount fd just attached.
func copyBack(copies []int, i, fd int, target string) error {
	c, err := copyAttached(fd, target)
	if err != nil {
		copies[i] = copyFailed
		return err
	}
	copies[i] = c
	return nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// attachInTree attaches the carried mount fd (a fresh proc for proc) at
// its image path in the tree.
func attachInTree(tree string, info carriedInfo, fd int) error {
	if info.Proc {
		p, err := newMount("proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return err
		}
		defer unix.Close(p)
		fd = p
	}
	if rel(info.Target) == "." {
		return fmt.Errorf("a kept mount over the tree's / itself")
	}
	top, err := openTree(tree)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	t, err := openBeneath(top, info.Target)
	if err != nil {
		return fmt.Errorf("the mount kept on %s: %w", info.Target, err)
	}
	defer unix.Close(t)
	if err := isKind(t, info.Target, !info.File); err != nil {
		return fmt.Errorf("the mount kept on %s: %w", info.Target, err)
	}
	if err := unix.MoveMount(fd, "", t, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching the mount kept on %s: %w", info.Target, err)
	}
	return nil
}

// keep returns detached copies of the mounts left in the tree that were
// not there before the carried ones were attached; call it once no
// process of the command is left.
func (k *keeper) keep() ([]carried, error) {
	ms, err := readMountinfo()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace's mounts: %w", err)
	}
	var out []carried
	for _, m := range newTopMounts(ms, k.before, k.tree) {
		if m.point == "/" {
			continue
		}
		c, err := k.copyOf(m)
		if err != nil {
			closeCarried(out)
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// copyOf makes a detached copy of the mount m (with its submounts).
func (k *keeper) copyOf(m mountEntry) (carried, error) {
	c := carried{info: carriedInfo{Target: m.point, Proc: m.fstype == "proc"}}
	if c.info.Proc {
		return c, nil
	}
	top, err := openTree(k.tree)
	if err != nil {
		return c, err
	}
	fd, err := openBeneath(top, m.point)
	unix.Close(top)
	if err != nil {
		return c, fmt.Errorf("the mount on %s: %w", m.point, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return c, fmt.Errorf("the mount on %s: %w", m.point, err)
	}
	c.info.File = st.Mode&unix.S_IFMT != unix.S_IFDIR
	mnt, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return c, fmt.Errorf("copying the mount on %s: %w", m.point, err)
	}
	c.f = os.NewFile(uintptr(mnt), "mount on "+m.point)
	return c, nil
}
