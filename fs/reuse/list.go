package reuse

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Entry is one name in an ext filesystem, as debugfs lists it.
type Entry struct {
	Path         string // absolute, inside the filesystem
	Ino          uint32
	Mode         uint32 // st_mode: type and permission bits
	UID, GID     uint32
	Size         int64
	Major, Minor uint32 // device nodes
	Xattrs       []Xattr
}

// Xattr is an extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// File types of st_mode.
const (
	typeMask = 0o170000
	typeDir  = 0o040000
	typeReg  = 0o100000
	typeLnk  = 0o120000
	typeChr  = 0o020000
	typeBlk  = 0o060000
	typeFIFO = 0o010000
	typeSock = 0o140000
)

func (e Entry) kind() uint32 { return e.Mode & typeMask }

// debugfs runs one batch of read-only debugfs commands on the region and
// returns each command's output. The batch is a command file; debugfs
// echoes each command as "debugfs: CMD", which delimits the outputs. An
// echo line out of sequence (a name holding a newline could forge one)
// stays in the output it appears in, whose parser then refuses it.
func debugfs(ctx context.Context, run fstool.Runner, src Source, tmp string, cmds []string) ([]string, error) {
	f, err := os.CreateTemp(tmp, "debugfs-*.cmd")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(strings.Join(cmds, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	out, err := fstool.Run(ctx, bounded(run), []string{"debugfs", "-f", f.Name(), src.target()}, nil)
	if err != nil {
		return nil, err
	}
	outs := make([]string, len(cmds))
	i := -1
	for _, line := range strings.SplitAfter(out, "\n") {
		if i+1 < len(cmds) && strings.TrimSuffix(line, "\n") == "debugfs: "+cmds[i+1] {
			i++
			continue
		}
		if i < 0 {
			continue // debugfs's banner
		}
		outs[i] += line
	}
	if i != len(cmds)-1 {
		return nil, fmt.Errorf("debugfs answered %d of %d commands", i+1, len(cmds))
	}
	return outs, nil
}

// List lists the filesystem at src breadth-first, one debugfs run per
// level of directories, with the extended attributes of every entry and
// the numbers of device nodes. tmp holds the command files.
func List(ctx context.Context, run fstool.Runner, src Source, tmp string) ([]Entry, error) {
	root := Entry{Path: "/", Ino: 2, Mode: typeDir | 0o755}
	all := []Entry{root}
	level := []int{0} // indexes in all of this level's directories
	dirs := map[uint32]string{2: "/"}
	for len(level) > 0 {
		cmds := make([]string, len(level))
		for i, d := range level {
			cmds[i] = fmt.Sprintf("ls -p <%d>", all[d].Ino)
		}
		outs, err := debugfs(ctx, run, src, tmp, cmds)
		if err != nil {
			return nil, err
		}
		var next []int
		for i, d := range level {
			entries, self, err := parseLs(all[d].Path, outs[i])
			if err != nil {
				return nil, err
			}
			if d == 0 {
				all[0].Mode, all[0].UID, all[0].GID = self.Mode, self.UID, self.GID
			}
			for _, e := range entries {
				if e.kind() == typeDir {
					if other, ok := dirs[e.Ino]; ok {
						return nil, fmt.Errorf("%s: directory inode %d is also %s (a directory linked twice: the filesystem is corrupt)", e.Path, e.Ino, other)
					}
					dirs[e.Ino] = e.Path
					next = append(next, len(all))
				}
				all = append(all, e)
			}
		}
		level = next
	}
	if err := addInodeFacts(ctx, run, src, tmp, all); err != nil {
		return nil, err
	}
	return all, nil
}

// parseLs parses `ls -p` of the directory dir: lines
// "/INODE/MODE/UID/GID/NAME/SIZE/". It returns the entries other than "."
// and "..", and the directory's own "." entry.
func parseLs(dir, out string) ([]Entry, Entry, error) {
	var list []Entry
	var self Entry
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" || line == "/0/000000/0/0//0/" {
			continue // the unused slots lost+found has in advance
		}
		e, name, err := parseLsLine(line)
		if err != nil {
			return nil, self, fmt.Errorf("%s: %w", dir, err)
		}
		switch {
		case name == ".":
			self = e
			continue
		case name == "..":
			continue
		case name == "" || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0):
			return nil, self, fmt.Errorf("%s: refusing the entry named %q: a name holding \"/\" (or empty) could lead the import out of the filesystem's tree", dir, name)
		case seen[name]:
			return nil, self, fmt.Errorf("%s: refusing the name %q listed twice in one directory (the filesystem is corrupt or crafted)", dir, name)
		}
		seen[name] = true
		e.Path = path.Join(dir, name)
		list = append(list, e)
	}
	return list, self, nil
}

func parseLsLine(line string) (Entry, string, error) {
	bad := fmt.Errorf("cannot read debugfs's listing line %q (a name holding a newline?)", line)
	if len(line) < 2 || line[0] != '/' || line[len(line)-1] != '/' {
		return Entry{}, "", bad
	}
	parts := strings.SplitN(line[1:len(line)-1], "/", 5)
	if len(parts) != 5 {
		return Entry{}, "", bad
	}
	cut := strings.LastIndexByte(parts[4], '/')
	if cut < 0 {
		return Entry{}, "", bad
	}
	name, size := parts[4][:cut], parts[4][cut+1:]
	var nums [4]uint64
	for i, base := range []int{10, 8, 10, 10} {
		n, err := strconv.ParseUint(parts[i], base, 32)
		if err != nil {
			return Entry{}, "", bad
		}
		nums[i] = n
	}
	e := Entry{Ino: uint32(nums[0]), Mode: uint32(nums[1]), UID: uint32(nums[2]), GID: uint32(nums[3])}
	if size != "" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return Entry{}, "", bad
		}
		e.Size = n
	}
	switch e.kind() {
	case typeDir, typeReg, typeLnk, typeChr, typeBlk, typeFIFO, typeSock:
	default:
		return Entry{}, "", fmt.Errorf("%s: unknown file type in mode %o", name, e.Mode)
	}
	return e, name, nil
}

// addInodeFacts reads the extended attributes of every entry but symbolic
// links, and the device numbers of device nodes, in one debugfs run.
func addInodeFacts(ctx context.Context, run fstool.Runner, src Source, tmp string, all []Entry) error {
	var cmds []string
	var who []int
	for i, e := range all {
		if e.kind() != typeLnk {
			cmds, who = append(cmds, fmt.Sprintf("ea_list <%d>", e.Ino)), append(who, i)
		}
		if k := e.kind(); k == typeChr || k == typeBlk {
			cmds, who = append(cmds, fmt.Sprintf("stat <%d>", e.Ino)), append(who, i)
		}
	}
	outs, err := debugfs(ctx, run, src, tmp, cmds)
	if err != nil {
		return err
	}
	for j, out := range outs {
		e := &all[who[j]]
		if strings.HasPrefix(cmds[j], "stat") {
			if e.Major, e.Minor, err = parseDevice(out); err != nil {
				return fmt.Errorf("%s: %w", e.Path, err)
			}
			continue
		}
		if e.Xattrs, err = parseXattrs(out); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}

func parseDevice(stat string) (uint32, uint32, error) {
	const key = "Device major/minor number:"
	i := strings.Index(stat, key)
	if i < 0 {
		return 0, 0, fmt.Errorf("debugfs stat gives no device numbers")
	}
	f := strings.Fields(stat[i+len(key):])
	if len(f) == 0 {
		return 0, 0, fmt.Errorf("debugfs stat gives no device numbers")
	}
	maj, min, _ := strings.Cut(f[0], ":")
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("cannot read device numbers %q", f[0])
	}
	return uint32(a), uint32(b), nil
}
