package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/events"
	"github.com/vmdb2-go/vmdb2/steps"
)

// display shows build events: progress on stdout with -v (vmdb2's
// convention), errors and warnings on stderr, and everything, with
// timestamps, in the --log file. With --progress=json the events are JSON
// lines on stdout, and -v's progress goes to stderr. On a terminal without
// -v, a status line shows the running step (statusLine).
type display struct {
	mu      sync.Mutex
	verbose bool
	stdout  io.Writer // where -v's progress goes
	stderr  io.Writer
	log     io.Writer     // nil without --log
	json    *jsonProgress // nil without --progress=json
	status  *statusLine   // nil unless stdout is a terminal, without -v
	now     func() time.Time
}

// newDisplay makes the display the options ask for.
func newDisplay(opts *options, stdout, stderr io.Writer) *display {
	d := &display{verbose: opts.verbose, stdout: stdout, stderr: stderr, now: time.Now}
	if opts.progress == progressJSON {
		d.json = &jsonProgress{w: events.NewWriter(stdout, time.Now), start: time.Now(), now: time.Now}
		d.stdout = stderr
	}
	if opts.progress != progressJSON && !opts.verbose {
		if d.status = newStatusLine(stdout); d.status != nil {
			d.stdout = statusWriter{stdout, d.status}
			d.stderr = statusWriter{stderr, d.status}
		}
	}
	return d
}

// buildStarted reports the spec and its plan (nil when the spec could not
// be planned) before any of its problems.
func (d *display) buildStarted(spec string, plan *steps.Plan, seed string) {
	if d.json != nil {
		d.json.buildStarted(spec, plan, seed)
	}
}

// finished reports the program's exit status.
func (d *display) finished(code int) {
	if d.status != nil {
		d.status.finish()
	}
	if d.json != nil {
		d.json.buildEnded(code)
	}
}

// plainError prints lines on stderr as they are (no "ERROR:"), and as one
// error event.
func (d *display) plainError(lines ...string) {
	for _, l := range lines {
		fmt.Fprintln(d.stderr, l)
	}
	if d.json != nil {
		d.json.failure(strings.Join(lines, "\n"))
	}
}

func (d *display) progress(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if d.verbose {
		fmt.Fprintln(d.stdout, msg)
	}
	d.logf("INFO", "%s", msg)
}

// note reports the progress of what follows the steps (the exports, the
// boot check) as -v's progress does, and as a message event of no step.
func (d *display) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.progress("%s", msg)
	if d.json != nil {
		d.json.message(msg)
	}
}

func (d *display) logf(level, format string, args ...any) {
	if d.log == nil {
		return
	}
	ts := d.now().Format("2006-01-02 15:04:05")
	for _, line := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		fmt.Fprintf(d.log, "%s %s %s\n", ts, level, line)
	}
}

// errorf reports an error of the build as a whole.
func (d *display) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.errorText(msg)
	if d.json != nil {
		d.json.failure(msg)
	}
}

// errorText shows and logs an error whose event, if any, was reported.
func (d *display) errorText(msg string) {
	fmt.Fprintln(d.stderr, "ERROR: "+msg)
	d.logf("ERROR", "%s", msg)
}

func (d *display) diagnostic(diag steps.Diagnostic) {
	if d.json != nil {
		d.json.diagnostic(diag)
	}
	fmt.Fprintln(d.stderr, diag.String())
	level := "ERROR"
	if diag.Severity == steps.Warning {
		level = "WARNING"
	}
	d.logf(level, "%s", diag.String())
}

// Event implements steps.Observer.
func (d *display) Event(e steps.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.json != nil {
		d.json.stepEvent(e)
	}
	if d.status != nil {
		d.status.event(e)
	}
	where := ""
	name := ""
	if e.Step != nil {
		where = e.Step.Where()
		name = e.Step.Name()
	}
	switch e.Kind {
	case steps.StepStart:
		d.progress("Step %d/%d: %s (%s)", e.Index, e.Total, e.Step.Summary(), where)
		d.logf("DEBUG", "Running step %d: %s", e.Index, describeKeys(e.Step))
	case steps.StepSkipped:
		d.progress("Step %d/%d: %s (%s) skipped: unless %s", e.Index, e.Total, e.Step.Summary(), where, e.Step.Unless.Describe())
	case steps.StepEnd:
		if e.Err != nil {
			d.progress("Step %d/%d failed after %s", e.Index, e.Total, seconds(e.Duration))
		} else {
			d.progress("Step %d/%d done in %s", e.Index, e.Total, seconds(e.Duration))
		}
	case steps.TeardownStart:
		d.progress("Teardown %d/%d: %s (%s)", e.Index, e.Total, e.Step.Summary(), where)
	case steps.TeardownSkipped:
		d.logf("INFO", "Teardown %d/%d skipped: unless %s", e.Index, e.Total, e.Step.Unless.Describe())
	case steps.TeardownEnd:
		if e.Err != nil {
			d.errorText(fmt.Sprintf("%s: teardown of %s failed: %v", where, name, e.Err))
		} else {
			d.logf("INFO", "Teardown %d/%d done in %s", e.Index, e.Total, seconds(e.Duration))
		}
	case steps.Message:
		d.progress("%s", e.Text)
	case steps.Exec:
		d.progress("Exec: %s", steps.ShellQuote(e.Argv))
	case steps.Output:
		if d.verbose {
			fmt.Fprintf(d.stdout, "  %s| %s\n", name, e.Text)
		}
		d.logf("DEBUG", "OUTPUT: %s", e.Text)
	case steps.Detail:
		d.logf("DEBUG", "%s", e.Text)
	case steps.Warn:
		fmt.Fprintf(d.stderr, "%s: warning: %s\n", where, e.Text)
		d.logf("WARNING", "%s: %s", where, e.Text)
	case steps.RunFailed:
		d.errorText(e.Err.Error())
		d.progress("Something went wrong, cleaning up!")
	}
}

func describeKeys(s *steps.Step) string {
	var parts []string
	for _, k := range s.ResolvedKeys() {
		parts = append(parts, k.Name+"="+k.Value)
	}
	return s.Name() + " " + strings.Join(parts, " ")
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// openLog opens the --log file for appending, as vmdb2 does.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open log file: %w", err)
	}
	return f, nil
}
