// Package fstool holds what the filesystem builders share: how their external
// tools are run (Runner) and how a region of an image file is checked, zeroed
// and filled from a scratch file without touching bytes outside it.
package fstool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Command is one invocation of an external tool.
type Command struct {
	// Args is the argument vector; Args[0] is the program, looked up in PATH
	// by the runner.
	Args []string
	// Env holds NAME=VALUE pairs to add to the environment the runner would
	// otherwise give the program (they win over inherited values).
	Env []string
	// Stdout and Stderr receive the program's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Runner runs a command to completion and returns a non-nil error when it
// could not be started or exited unsuccessfully. The build runs tools inside
// its user namespace so that file owners in the stage come out right in the
// filesystem; tests and privileged callers use Exec.
type Runner func(ctx context.Context, cmd Command) error

// Exec is a Runner that runs the command directly on the host with os/exec,
// inheriting the current environment plus cmd.Env.
func Exec(ctx context.Context, cmd Command) error {
	if len(cmd.Args) == 0 {
		return errors.New("fstool: empty command")
	}
	c := exec.CommandContext(ctx, cmd.Args[0], cmd.Args[1:]...)
	c.Env = append(os.Environ(), cmd.Env...)
	c.Stdout = cmd.Stdout
	c.Stderr = cmd.Stderr
	return c.Run()
}

// ToolError is returned by Run when a tool fails: it names the tool, keeps
// the cause and the tail of what the tool wrote to stderr.
type ToolError struct {
	Tool   string
	Stderr string
	Err    error
}

func (e *ToolError) Error() string {
	msg := fmt.Sprintf("%s failed: %v", e.Tool, e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + strings.ReplaceAll(s, "\n", "; ")
	}
	var ee *exec.Error
	if errors.As(e.Err, &ee) && errors.Is(ee.Err, exec.ErrNotFound) {
		msg += " (install it: run 'make deps' as root, or apt-get install the package providing " + e.Tool + ")"
	}
	return msg
}

func (e *ToolError) Unwrap() error { return e.Err }

// maxStderr bounds how much of a tool's stderr is kept for error messages.
const maxStderr = 4096

// Run runs args (plus env) with run and returns what the tool wrote to
// stdout. On failure the error is a *ToolError carrying the tail of stderr.
// A nil run means Exec.
func Run(ctx context.Context, run Runner, args []string, env []string) (string, error) {
	if run == nil {
		run = Exec
	}
	var stdout, stderr bytes.Buffer
	err := run(ctx, Command{Args: args, Env: env, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		s := stderr.String()
		if len(s) > maxStderr {
			s = "…" + s[len(s)-maxStderr:]
		}
		return stdout.String(), &ToolError{Tool: args[0], Stderr: s, Err: err}
	}
	return stdout.String(), nil
}

// FindTool finds a program in PATH or, failing that, in the sbin
// directories that an ordinary user's PATH lacks on Debian (mke2fs, mkswap
// and friends live there). A name not found is returned as it is.
func FindTool(name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}
