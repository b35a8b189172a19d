package steps

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// InNamespace runs a command (or helper) in the build's user namespace:
// reported like every command, its output shown live with -v and logged,
// and a failure's error carrying the command's last lines of output.
func (b *Build) InNamespace(c userns.Cmd) error {
	what := c.Helper
	if len(c.Argv) > 0 {
		what = briefCommand(c.Argv)
		b.emit(Event{Kind: Exec, Argv: c.Argv})
	}
	if c.Env == nil {
		c.Env = os.Environ()
	}
	c.Env = append(c.Env, "LC_ALL=C.UTF-8")
	tail := &lineTail{max: tailLines, emit: func(line string) { b.emit(Event{Kind: Output, Text: line}) }}
	if c.Stdout == nil {
		c.Stdout = tail
	}
	if c.Stderr == nil {
		c.Stderr = tail
	}
	err := userns.Run(b.ctx, c)
	tail.flush()
	if err == nil {
		return nil
	}
	if b.ctx.Err() != nil {
		return fmt.Errorf("%s stopped: %w", what, ErrInterrupted)
	}
	msg := err.Error()
	var ee *userns.ExitError
	if errors.As(err, &ee) && ee.Message == "" {
		msg = fmt.Sprintf("%s failed with exit status %d", what, ee.Code)
		if ee.Signal != 0 {
			msg = fmt.Sprintf("%s was killed by %v", what, ee.Signal)
		}
	}
	if lines := tail.last(); len(lines) > 0 {
		msg += "; its last output:\n    " + strings.Join(lines, "\n    ")
	}
	return errors.New(msg)
}

// mountedTree returns the tag named by a step key, which must be mounted,
// and its tree's host path (checked now: see tagdir.go).
func (b *Build) mountedTree(name string) (*Tag, string, error) {
	tag, err := b.mountedTag(name)
	if err != nil {
		return nil, "", err
	}
	dir, err := b.tagDir(tag)
	return tag, dir, err
}

// rootTree returns the host path of the tree mounted at / (checked now).
func (b *Build) rootTree() (string, error) {
	tag, err := b.State.Tags.Root()
	if err != nil {
		return "", err
	}
	return b.tagDir(tag)
}

// mountedTag returns the tag named by a step key, which must be mounted.
func (b *Build) mountedTag(name string) (*Tag, error) {
	tag, err := b.State.Tags.Get(name)
	if err != nil {
		return nil, err
	}
	if !tag.Mounted {
		return nil, fmt.Errorf("tag %s is not mounted (add a `mount: %s` step before this one)", name, name)
	}
	return tag, nil
}

// streamed runs fn with a writer whose lines are reported as command output
// (live with -v, always logged); an error from fn gets the last lines
// appended.
func (b *Build) streamed(fn func(w io.Writer) error) error {
	tail := &lineTail{max: tailLines, emit: func(line string) { b.emit(Event{Kind: Output, Text: line}) }}
	err := fn(tail)
	tail.flush()
	if err == nil {
		return nil
	}
	if b.ctx.Err() != nil {
		return fmt.Errorf("%v: %w", err, ErrInterrupted)
	}
	if lines := tail.last(); len(lines) > 0 {
		return fmt.Errorf("%w; the last output:\n    %s", err, strings.Join(lines, "\n    "))
	}
	return err
}

// buildEnv is the environment steps pass to tools that honour
// SOURCE_DATE_EPOCH.
func (b *Build) buildEnv() []string {
	if b.Settings.SourceDateEpoch.IsZero() {
		return nil
	}
	return []string{fmt.Sprintf("SOURCE_DATE_EPOCH=%d", b.Settings.SourceDateEpoch.Unix())}
}
