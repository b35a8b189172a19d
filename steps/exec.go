package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// place says where the build's runner starts a program.
type place int

const (
	// onHost: a host process, in a process group of its own, killed
	// when the build ends or dies.
	onHost place = iota
	// inNamespace: inside the build's user namespace (userns.Run), whose
	// processes all die with the build.
	inNamespace
	// asTool: a filesystem tool over the stage: on the host when this
	// program is root (the namespace's mapping is then the identity),
	// else in the namespace, so that it reads the stage's owners as the
	// target sees them.
	asTool
	// passThrough: in the namespace, its standard streams passed on
	// untouched (they carry data, as those of Ansible's connection do:
	// modules, file transfers), the command reported in the log only.
	passThrough
	// hostSecret: onHost, its standard output (a secret) given to the
	// caller only, never shown or logged.
	hostSecret
)

// tailLines is how many lines of a failing command's output its error
// message carries.
const tailLines = 12

// hostGrace is how long a host program has, after SIGTERM to its process
// group, before the group is killed.
const hostGrace = 5 * time.Second

// run is the build's one way to start a program; every command of every
// step goes through it (the exported entry points below and the runners
// handed to the stage and fs packages are adapters). It reports the
// command once (Exec event), reports every line of its output once
// (Output events: live with -v, always logged) while still giving the
// output to c.Stdout and c.Stderr when they are set, and returns an error
// that names the command and its exit status. That error carries the last
// lines of output unless the caller collected both streams itself (it then
// composes its own message) or the user saw them as they came
// (Settings.OutputShown): a failure's output is shown once. A program stopped because ctx was done gives
// an error wrapping ErrInterrupted.
//
// Processes never outlive the build: on the host the program gets its own
// process group (SIGTERM to the group when ctx is done, SIGKILL after
// hostGrace, SIGKILL to whatever is left of the group once the program
// ended) and SIGKILL as parent-death signal, so it dies with the build
// even when the build is SIGKILLed (children it forks would not: the
// filesystem tools run on the host do not fork); in the namespace, userns
// gives these guarantees to every process of the namespace.
func (b *Build) run(ctx context.Context, where place, c userns.Cmd) error {
	// The whole command, quoted so that it can be copied and run again.
	what := c.Helper
	if len(c.Argv) > 0 {
		what = shellQuote(c.Argv)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if c.Env == nil {
		c.Env = os.Environ()
	}
	if where == inNamespace || where == passThrough {
		if err := b.withTreeMounts(&c); err != nil {
			return err
		}
	}
	if where == passThrough {
		b.Detail("Exec in the target: %s", shellQuote(c.Argv))
		if err := userns.Run(ctx, c); err != nil {
			return commandFailure(ctx, what, c.Argv, err, nil)
		}
		return nil
	}
	if len(c.Argv) > 0 {
		b.emit(Event{Kind: Exec, Argv: c.Argv})
	}
	collected := c.Stdout != nil && c.Stderr != nil
	tail := &lineTail{max: tailLines, emit: func(line string) { b.emit(Event{Kind: Output, Text: line}) }}
	if where != hostSecret {
		c.Stdout = teeTo(c.Stdout, tail)
	}
	c.Stderr = teeTo(c.Stderr, tail)
	var err error
	if where == onHost || where == hostSecret || (where == asTool && os.Geteuid() == 0) {
		err = runHost(ctx, c)
	} else {
		err = userns.Run(ctx, c)
	}
	tail.flush()
	if err == nil {
		return nil
	}
	if collected && ctx.Err() == nil && errors.Is(err, exec.ErrNotFound) {
		return err // the caller's message says which package to install
	}
	var lines []string
	if !collected && !b.Settings.OutputShown {
		lines = tail.last()
	}
	return commandFailure(ctx, what, c.Argv, err, lines)
}

func teeTo(w io.Writer, tail *lineTail) io.Writer {
	if w == nil {
		return tail
	}
	return io.MultiWriter(w, tail)
}

// runHost runs c.Argv as a host process that cannot outlive this one.
func runHost(ctx context.Context, c userns.Cmd) error {
	if len(c.Argv) == 0 {
		return fmt.Errorf("helper %q can only run in the build's namespace", c.Helper)
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = hostGrace
	// The parent-death signal fires when the thread that forked the
	// child ends, not the process: keep this goroutine on its thread
	// until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Run()
	// Nothing of the group outlives the command (daemons it started in
	// the background, children that ignored SIGTERM).
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return err
}

// commandError is a failed command: a message for the user, and the cause
// for errors.Is and errors.As.
type commandError struct {
	msg string
	err error
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.err }

// commandFailure turns a runner's error into the message the user sees:
// the command, how it ended and its last lines of output.
func commandFailure(ctx context.Context, what string, argv []string, err error, lines []string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s stopped: %w", what, ErrInterrupted)
	}
	var msg string
	var ee *exec.ExitError
	var ne *userns.ExitError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		name := argv[0][strings.LastIndexByte(argv[0], '/')+1:]
		return &commandError{missingProgram(name), err}
	case errors.As(err, &ee) && ee.ExitCode() < 0:
		msg = fmt.Sprintf("%s was killed (%v)", what, ee.ProcessState)
	case errors.As(err, &ee):
		msg = fmt.Sprintf("%s failed with exit status %d", what, ee.ExitCode())
	case errors.As(err, &ne) && ne.Message == "" && ne.Signal != 0:
		msg = fmt.Sprintf("%s was killed by %v", what, ne.Signal)
	case errors.As(err, &ne) && ne.Message == "":
		msg = fmt.Sprintf("%s failed with exit status %d", what, ne.Code)
	case errors.As(err, &ne):
		msg = err.Error()
	default:
		msg = fmt.Sprintf("%s: %v", what, err)
	}
	if len(lines) > 0 {
		msg += "; its last output:\n    " + strings.Join(lines, "\n    ")
	}
	return &commandError{msg, err}
}

// CommandOptions adjust how an external command runs.
type CommandOptions struct {
	Env   []string // added to the environment
	Dir   string
	Stdin io.Reader
	// Stdout, when set, also receives the command's standard output.
	Stdout io.Writer
}

// Command runs a host program for the current step, through the build's
// runner (see run): reported, its output shown and logged, its process
// group killed when the build is interrupted or ends.
func (b *Build) Command(argv []string, opts CommandOptions) error {
	return b.CommandContext(b.ctx, argv, opts)
}

// CommandContext is Command stopped by ctx rather than by the build's own
// context, for work done after Run (the exports of cmd/vmdb2), when the
// build's context is its teardowns' one, which nothing cancels.
func (b *Build) CommandContext(ctx context.Context, argv []string, opts CommandOptions) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	return b.run(ctx, onHost, userns.Cmd{Argv: argv, Env: withLocale(os.Environ(), opts.Env...),
		Dir: opts.Dir, Stdin: opts.Stdin, Stdout: opts.Stdout})
}

// secretCommand runs a host program whose standard output is a secret
// (a key-cmd's passphrase): it goes to stdout only, not to the log.
func (b *Build) secretCommand(argv []string, stdout io.Writer) error {
	return b.run(b.ctx, hostSecret, userns.Cmd{Argv: argv, Env: withLocale(os.Environ()), Stdout: stdout})
}

// InNamespace runs a command (or helper) in the build's user namespace,
// through the build's runner (see run).
func (b *Build) InNamespace(c userns.Cmd) error {
	if c.Env == nil {
		c.Env = os.Environ()
	}
	c.Env = withLocale(c.Env)
	return b.run(b.ctx, inNamespace, c)
}

// nsRun is the build's runner in the form package stage's runners take
// (grub.Runner, bootstrap.Runner): a command in the build's namespace,
// with the environment the caller chose.
func (b *Build) nsRun(ctx context.Context, c userns.Cmd) error {
	return b.run(ctx, inNamespace, c)
}

// withLocale returns env plus LC_ALL=C.UTF-8 (so that tools' messages and
// sorting do not depend on the host's locale), then extra.
func withLocale(env []string, extra ...string) []string {
	out := append(append([]string(nil), env...), "LC_ALL=C.UTF-8")
	return append(out, extra...)
}

// lineTail splits written bytes into lines, reports each, and keeps the last
// few for error messages.
type lineTail struct {
	mu    sync.Mutex
	max   int
	buf   bytes.Buffer
	lines []string
	emit  func(string)
}

func (t *lineTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	for {
		i := bytes.IndexByte(t.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(t.buf.Next(i + 1))
		t.add(strings.TrimRight(line, "\r\n"))
	}
	return len(p), nil
}

func (t *lineTail) add(line string) {
	t.emit(line)
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func (t *lineTail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buf.Len() > 0 {
		t.add(t.buf.String())
		t.buf.Reset()
	}
}

func (t *lineTail) last() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// shellQuote renders argv as a shell command line, for messages and logs.
func shellQuote(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || r == '/' || r == '=' || r == ':' || r == ',' || r == '+' || r == '@' ||
				(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
		}) < 0 {
			parts[i] = a
			continue
		}
		parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(parts, " ")
}

// ShellQuote is shellQuote for the command line's display.
func ShellQuote(argv []string) string { return shellQuote(argv) }
