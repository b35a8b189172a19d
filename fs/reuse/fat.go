package reuse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/stage/landlock"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// mtoolsEnv: no geometry check of the region (it is not a whole disk).
var mtoolsEnv = []string{"MTOOLS_SKIP_CHECK=1"}

// importFAT copies a FAT filesystem's files with mcopy (-s -m: the tree,
// with modification times), after mdir's total refused a tree claiming
// more than the stage's free space (cross-linked cluster chains can claim
// any size).
func importFAT(ctx context.Context, run fstool.Runner, ns Namespace, src Source, dir, tmp string) (*Result, error) {
	drive := fmt.Sprintf("%s@@%d", src.Image, src.Offset)
	out, err := fstool.Run(ctx, bounded(run), []string{"mdir", "-/", "-a", "-i", drive, "::/"}, mtoolsEnv)
	if err != nil {
		return nil, fmt.Errorf("listing the FAT filesystem: %w", err)
	}
	files, bytes, err := mdirTotal(out)
	if err != nil {
		return nil, err
	}
	if err := checkRoom(dir, bytes, Entry{Path: "(all files)", Size: bytes}); err != nil {
		return nil, err
	}
	res := &Result{Files: files, Bytes: bytes}
	if files == 0 {
		return res, nil
	}
	if err := ns(ctx, userns.Cmd{Helper: helperFAT, HelperArgs: []string{dir, fstool.FindTool("mcopy"), drive}, Env: append(os.Environ(), mtoolsEnv...)}); err != nil {
		return nil, fmt.Errorf("importing the files: %w", err)
	}
	return res, nil
}

// mdirTotal reads the "Total files listed:" lines of a recursive mdir:
// "N files   1 234 bytes" (digits grouped by spaces). A tree of no files
// but its root has no total line.
func mdirTotal(out string) (int, int64, error) {
	_, total, ok := strings.Cut(out, "Total files listed:")
	if !ok {
		if strings.Contains(out, "No files") || strings.TrimSpace(out) == "" {
			return 0, 0, nil
		}
		_, total, ok = strings.Cut(out, "Directory for ::/")
		if !ok {
			return 0, 0, errors.New("cannot read mdir's listing")
		}
	}
	for _, line := range strings.Split(total, "\n") {
		nf, rest, ok := strings.Cut(strings.TrimSpace(line), " files")
		if !ok || !strings.HasSuffix(rest, " bytes") {
			continue
		}
		n, err1 := strconv.Atoi(strings.TrimSpace(nf))
		b, err2 := strconv.ParseInt(strings.ReplaceAll(strings.TrimSuffix(rest, " bytes"), " ", ""), 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return n, b, nil
	}
	return 0, 0, fmt.Errorf("cannot read mdir's total in %q", total)
}

// fatHelper runs in the namespace: mcopy of the whole tree, confined to
// dir. Args: dir, mcopy's path, the drive (image@@offset).
func fatHelper(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: dir mcopy drive")
	}
	dir, mcopy, drive := args[0], args[1], args[2]
	cmd := exec.Command(mcopy, "-s", "-m", "-n", "-i", drive, "::/*", dir+"/")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := landlock.Run(dir, cmd); err != nil {
		return fmt.Errorf("mcopy: %w", err)
	}
	return nil
}
