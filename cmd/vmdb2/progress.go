package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vmdb2-go/vmdb2/steps"
)

// display shows build events: progress on stdout with -v (vmdb2's
// convention), errors and warnings on stderr, and everything, with
// timestamps, in the --log file.
type display struct {
	mu      sync.Mutex
	verbose bool
	stdout  io.Writer
	stderr  io.Writer
	log     io.Writer // nil without --log
	now     func() time.Time
}

func (d *display) progress(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if d.verbose {
		fmt.Fprintln(d.stdout, msg)
	}
	d.logf("INFO", "%s", msg)
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

func (d *display) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(d.stderr, "ERROR: "+msg)
	d.logf("ERROR", "%s", msg)
}

func (d *display) diagnostic(diag steps.Diagnostic) {
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
	where := ""
	name := ""
	if e.Step != nil {
		where = e.Step.Where()
		name = e.Step.Kind.Name
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
			d.errorf("%s: teardown of %s failed: %v", where, name, e.Err)
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
		d.errorf("%v", e.Err)
		d.progress("Something went wrong, cleaning up!")
	}
}

func describeKeys(s *steps.Step) string {
	var parts []string
	for _, k := range s.ResolvedKeys() {
		parts = append(parts, k.Name+"="+k.Value)
	}
	return s.Kind.Name + " " + strings.Join(parts, " ")
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
