package reuse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/fs/ext"
	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/landlock"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// The helpers that write the files, inside the build's user namespace.
const (
	helperExt = "vmdb2-reuse-ext"
	helperFAT = "vmdb2-reuse-fat"
)

func init() {
	userns.RegisterHelper(helperExt, extHelper)
	userns.RegisterHelper(helperFAT, fatHelper)
}

// Namespace runs a helper of this package (a userns.Cmd with Helper and
// HelperArgs) in the build's user namespace, without a Root: the host's
// files are visible, as root of the namespace sees them.
type Namespace func(ctx context.Context, c userns.Cmd) error

// Result is what Import did.
type Result struct {
	Files   int          // entries imported
	Bytes   int64        // bytes of file data
	Devices []ext.Device // device nodes, for the builder to add
	Lost    []string     // what could not be imported, one sentence each
}

// Import copies the files of the filesystem at src (of info.Type) into
// dir, an empty directory of the stage. run runs the read-only tools
// (debugfs, mdir) as the build's filesystem tools; ns runs the writing
// helper; tmp is the stage's directory for scratch files.
func Import(ctx context.Context, run fstool.Runner, ns Namespace, src Source, info Info, dir, tmp string) (*Result, error) {
	if strings.ContainsAny(dir, " \t\n\"\\'") {
		return nil, fmt.Errorf("the stage directory %q holds a character debugfs and mtools cannot take in a path: set TMPDIR to a plain path", dir)
	}
	if info.Type == "vfat" {
		return importFAT(ctx, run, ns, src, dir, tmp)
	}
	entries, err := List(ctx, run, src, tmp)
	if err != nil {
		return nil, err
	}
	res, err := plan(entries)
	if err != nil {
		return nil, err
	}
	if err := checkRoom(dir, res.Bytes, largest(entries)); err != nil {
		return nil, err
	}
	listing := filepath.Join(tmp, "reuse-listing.json")
	data, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(listing, data, 0o644); err != nil {
		return nil, err
	}
	defer os.Remove(listing)
	err = ns(ctx, userns.Cmd{Helper: helperExt, HelperArgs: []string{dir, listing, fstool.FindTool("debugfs"), src.target()}})
	if err != nil {
		return nil, fmt.Errorf("importing the files: %w", err)
	}
	return res, nil
}

// plan counts what the listing holds and says what is lost.
func plan(entries []Entry) (*Result, error) {
	res := &Result{}
	seen := map[uint32]string{}
	var links, fifos []string
	for _, e := range entries {
		res.Files++
		switch e.kind() {
		case typeReg:
			res.Bytes += e.Size
			if first, ok := seen[e.Ino]; ok {
				links = append(links, e.Path+" (= "+first+")")
			}
			seen[e.Ino] = e.Path
		case typeChr, typeBlk:
			res.Devices = append(res.Devices, ext.Device{Path: e.Path, Block: e.kind() == typeBlk, Major: e.Major, Minor: e.Minor,
				Perm: stage.ModeFromUnix(int64(e.Mode & 0o7777)), UID: int(e.UID), GID: int(e.GID), Mtime: time.Unix(0, 0)})
		case typeFIFO, typeSock:
			fifos = append(fifos, e.Path)
		}
	}
	if len(links) > 0 {
		res.Lost = append(res.Lost, fmt.Sprintf("%d hard links become separate copies: %s", len(links), strings.Join(first(links, 5), ", ")))
	}
	if len(fifos) > 0 {
		res.Lost = append(res.Lost, fmt.Sprintf("%d FIFOs and sockets are left out: %s", len(fifos), strings.Join(first(fifos, 5), ", ")))
	}
	return res, nil
}

func first(list []string, n int) []string {
	if len(list) > n {
		return append(list[:n:n], "…")
	}
	return list
}

func largest(entries []Entry) Entry {
	var big Entry
	for _, e := range entries {
		if e.kind() == typeReg && e.Size >= big.Size {
			big = e
		}
	}
	return big
}

// checkRoom refuses an import whose files' apparent size exceeds the free
// space where dir is: a sparse file claiming far more than the image holds
// would otherwise fill the build host's disk.
func checkRoom(dir string, need int64, big Entry) error {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("free space of the stage: %w", err)
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	if need <= free {
		return nil
	}
	return fmt.Errorf("refusing to import the filesystem: its files claim %d bytes (the largest, %s, %d bytes), more than the %d bytes free in the stage %s: a sparse file far bigger than its data, or a stage too small (set TMPDIR to a bigger filesystem)",
		need, big.Path, big.Size, free, filepath.Dir(dir))
}

// extHelper runs in the namespace: debugfs rdump confined to dir, then the
// listing's owners, modes and attributes applied. Args: dir, the listing
// (JSON), debugfs's path, the region.
func extHelper(args []string) error {
	if len(args) != 4 {
		return errors.New("usage: dir listing debugfs target")
	}
	dir, listing, debugfs, target := args[0], args[1], args[2], args[3]
	cmd := exec.Command(debugfs, "-R", "rdump / "+dir, target)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := landlock.Run(dir, cmd); err != nil {
		return fmt.Errorf("debugfs rdump: %w", err)
	}
	data, err := os.ReadFile(listing)
	if err != nil {
		return err
	}
	var entries []Entry
	if err := json.Unmarshal(data, &entries); err != nil {
		return err
	}
	return apply(dir, entries)
}
