package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Failed reports, during teardowns, whether the run phase failed or was
// interrupted; teardowns then skip work that only a finished image needs
// (building filesystems).
func (b *Build) Failed() bool { return b.failed }

// Stage returns the build's staging tree, creating it on first use.
func (b *Build) Stage() (*stage.Stage, error) {
	if b.stage == nil {
		st, err := stage.New(b.imagesSize())
		if err != nil {
			return nil, err
		}
		b.stage = st
		b.Detail("stage directory %s (%s)", st.Dir, st.Why)
		for _, d := range st.Reclaimed {
			b.Detail("removed %s, the stage of a build that was killed", d)
		}
		if st.ReclaimErr != nil {
			b.Warnf("%v", st.ReclaimErr)
		}
	}
	return b.stage, nil
}

// imagesSize bounds what the stage will hold: the sizes of the images
// written so far (the stage is made at the first mount, after mkimg), or
// of the images named on the command line.
func (b *Build) imagesSize() int64 {
	seen := map[string]bool{}
	var total int64
	add := func(p string) {
		if p == "" || seen[p] {
			return
		}
		seen[p] = true
		// A block device's size is where its end is.
		if f, err := os.Open(p); err == nil {
			if n, err := f.Seek(0, io.SeekEnd); err == nil {
				total += n
			}
			f.Close()
		}
	}
	for _, t := range b.State.Tags.All() {
		add(t.Image)
	}
	add(b.Settings.Output)
	add(b.Settings.Image)
	return total
}

func (b *Build) removeStage() error {
	if b.stage == nil {
		return nil
	}
	dir := b.stage.Dir
	if err := b.stage.Remove(); err != nil {
		return fmt.Errorf("removing the stage %s: %w", dir, err)
	}
	b.stage = nil
	return nil
}

// FileOp performs a file operation on the stage as root of the build's
// user namespace.
func (b *Build) FileOp(op stage.FileOp) error {
	b.Detail("file operation %s %s", op.Op, op.Path)
	return stage.Apply(b.ctx, op)
}

// ToolRunner runs filesystem tools for the fs package through the build's
// runner: on the host when root, else inside the build's user namespace
// (without confinement), so that they read the stage with the owners the
// target sees (see run).
func (b *Build) ToolRunner() fstool.Runner {
	return func(ctx context.Context, cmd fstool.Command) error {
		if len(cmd.Args) == 0 {
			return errors.New("empty command")
		}
		argv := append([]string{fstool.FindTool(cmd.Args[0])}, cmd.Args[1:]...)
		err := b.run(ctx, asTool, userns.Cmd{Argv: argv, Env: withLocale(os.Environ(), cmd.Env...),
			Stdout: cmd.Stdout, Stderr: cmd.Stderr})
		return hostToolMissing(cmd.Args[0], err)
	}
}

// hostPath makes a spec's host path (copy-file's src) absolute, relative
// to the current directory as vmdb2 does.
func hostPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	return filepath.Abs(p)
}

// removeNoise, when SOURCE_DATE_EPOCH is set, removes from every root tree
// of the stage the files that only record when or where it was built (logs,
// ldconfig's aux cache, backups, machine-id's content), before the
// filesystems are built.
func (b *Build) removeNoise() error {
	if b.Settings.SourceDateEpoch.IsZero() {
		return nil
	}
	for _, tag := range b.State.Tags.All() {
		if tag.Mounted && tag.MountOn == "" && tag.hasTree() {
			dir, err := b.tagDir(tag)
			if err != nil {
				return err
			}
			if err := b.FileOp(stage.FileOp{Op: "remove-noise", Root: dir}); err != nil {
				return err
			}
		}
	}
	return nil
}
