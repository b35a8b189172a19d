package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CommandOptions adjust how an external command runs.
type CommandOptions struct {
	Env   []string // added to the environment
	Dir   string
	Stdin io.Reader
	// Stdout, when set, receives the command's standard output instead of
	// the log (the output is then not shown line by line).
	Stdout io.Writer
}

// tailLines is how many lines of a failing command's output its error
// message carries.
const tailLines = 12

// Command runs an external program for the current step. The command is
// reported (Exec event) before it starts; every output line is reported as
// it arrives (shown live with -v, always logged); a failure's error carries
// the last lines of output. The program runs in its own process group,
// which is killed (SIGTERM, then SIGKILL after 5 s) when the build is
// interrupted, so no process of it survives the build.
func (b *Build) Command(argv []string, opts CommandOptions) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	ctx := b.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	b.emit(Event{Kind: Exec, Argv: argv})
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(append(os.Environ(), "LC_ALL=C.UTF-8"), opts.Env...)
	cmd.Dir = opts.Dir
	if opts.Stdin != nil {
		cmd.Stdin = opts.Stdin
	}
	tail := &lineTail{max: tailLines, emit: func(line string) { b.emit(Event{Kind: Output, Text: line}) }}
	if opts.Stdout != nil {
		cmd.Stdout = opts.Stdout
	} else {
		cmd.Stdout = tail
	}
	cmd.Stderr = tail
	err := cmd.Run()
	tail.flush()
	// Make sure nothing of the group outlives the command (daemons it
	// started in the background, children that ignored SIGTERM).
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s stopped: %w", argv[0], ErrInterrupted)
	}
	var ee *exec.ExitError
	msg := ""
	if errors.As(err, &ee) {
		msg = fmt.Sprintf("%s failed with exit status %d", briefCommand(argv), ee.ExitCode())
		if ee.ExitCode() < 0 {
			msg = fmt.Sprintf("%s was killed (%v)", briefCommand(argv), ee.ProcessState)
		}
	} else if errors.Is(err, exec.ErrNotFound) {
		return errors.New(missingProgram(argv[0]))
	} else {
		msg = fmt.Sprintf("%s: %v", briefCommand(argv), err)
	}
	if lines := tail.last(); len(lines) > 0 {
		msg += "; its last output:\n    " + strings.Join(lines, "\n    ")
	}
	return errors.New(msg)
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

// briefCommand renders argv for an error message: long or multi-line
// arguments (shell scripts) are cut to their first line.
func briefCommand(argv []string) string {
	short := make([]string, len(argv))
	for i, a := range argv {
		if j := strings.IndexByte(a, '\n'); j >= 0 {
			a = a[:j] + " …"
		}
		if len(a) > 60 {
			a = a[:57] + "…"
		}
		short[i] = a
	}
	return shellQuote(short)
}
