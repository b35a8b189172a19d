package main

import (
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/events"
	"github.com/vmdb2-go/vmdb2/steps"
)

// jsonProgress writes --progress=json: the build's events, one JSON object
// per line, on standard output (package events has the schema).
type jsonProgress struct {
	w     *events.Writer
	start time.Time
	now   func() time.Time
}

func (j *jsonProgress) buildStarted(spec string, plan *steps.Plan, seed string) {
	e := events.Event{Type: events.BuildStart, Spec: spec}
	if plan != nil {
		e.Steps = len(plan.Steps)
		e.Seed = seed
		if e.Seed == "" {
			e.Seed = plan.DefaultSeed()
		}
	}
	j.w.Write(e)
}

func (j *jsonProgress) buildEnded(code int) {
	j.w.Write(events.Event{Type: events.BuildEnd, Exit: events.ExitStatus(code), Duration: events.Seconds(j.now().Sub(j.start))})
}

func (j *jsonProgress) diagnostic(d steps.Diagnostic) {
	t := events.Error
	if d.Severity == steps.Warning {
		t = events.Warning
	}
	j.w.Write(events.Event{Type: t, File: d.File, Line: d.Line, Text: d.Msg})
}

// failure is an error of the build as a whole (no step to name).
func (j *jsonProgress) failure(msg string) {
	j.w.Write(events.Event{Type: events.Error, Text: msg})
}

// message is a progress message of no step (the exports, the boot check).
func (j *jsonProgress) message(msg string) {
	j.w.Write(events.Event{Type: events.Message, Text: msg})
}

// jsonTypes are the event types of the runner's events; the log-only
// Detail has none.
var jsonTypes = map[steps.EventKind]events.Type{
	steps.StepStart: events.StepStart, steps.StepSkipped: events.StepSkipped, steps.StepEnd: events.StepEnd,
	steps.TeardownStart: events.TeardownStart, steps.TeardownSkipped: events.TeardownSkipped, steps.TeardownEnd: events.TeardownEnd,
	steps.Message: events.Message, steps.Exec: events.Command, steps.Output: events.Output,
	steps.Warn: events.Warning, steps.RunFailed: events.Error,
}

// stepEvent translates one event of the runner. Events of a step carry its
// number; those that say where (start, end, skipped, warnings, errors) its
// kind, file and line too.
func (j *jsonProgress) stepEvent(e steps.Event) {
	t, ok := jsonTypes[e.Kind]
	if !ok {
		return
	}
	out := events.Event{Type: t, Step: e.Index}
	if e.Step != nil && t != events.Command && t != events.Output && t != events.Message {
		out.Kind, out.File, out.Line = e.Step.Name(), e.Step.File, e.Step.Line
	}
	switch e.Kind {
	case steps.StepSkipped, steps.TeardownSkipped:
		out.Text = "unless " + e.Step.Unless.Describe()
	case steps.StepEnd, steps.TeardownEnd:
		out.Status, out.Duration = events.OK, events.Seconds(e.Duration)
		if e.Err != nil {
			out.Status = events.Failed
		}
	case steps.Exec:
		out.Argv = e.Argv
	case steps.Output, steps.Message, steps.Warn:
		out.Text = e.Text
	case steps.RunFailed:
		out.Text = e.Err.Error()
		if e.Step != nil {
			out.Text = strings.TrimPrefix(out.Text, e.Step.Where()+": ")
		}
	}
	j.w.Write(out)
	if e.Kind == steps.TeardownEnd && e.Err != nil {
		out.Type, out.Status, out.Duration = events.Error, "", nil
		out.Text = "teardown of " + out.Kind + " failed: " + e.Err.Error()
		j.w.Write(out)
	}
}
