// Package events is the build's machine-readable event stream, what
// `vmdb2 --progress=json` writes: the Event record, its types, and a
// Writer that puts one JSON object per line. README.md ("Progress as JSON
// events") documents the schema; this package is its one definition.
package events

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Type says what an event reports.
type Type string

// The event types, in the order a build produces them.
const (
	// BuildStart is the first event: Spec, and Steps and Seed when the
	// spec could be planned.
	BuildStart Type = "build-start"
	// StepStart: a step begins (Step, Kind, File, Line).
	StepStart Type = "step-start"
	// StepSkipped: a step's `unless` held (Text is the condition).
	StepSkipped Type = "step-skipped"
	// StepEnd: a step ended (Status "ok" or "failed", Duration).
	StepEnd Type = "step-end"
	// Command: a program is started (Argv).
	Command Type = "command"
	// Output: one line a program printed (Text), standard output and
	// error merged in the order they came.
	Output Type = "output"
	// Message: a step's progress message (an echo step's text and the like).
	Message Type = "message"
	// Warning and Error: what the human display prints on standard error
	// (Text), with File and Line when they are known.
	Warning Type = "warning"
	Error   Type = "error"
	// TeardownStart, TeardownSkipped, TeardownEnd: the teardown of a step,
	// as the step events.
	TeardownStart   Type = "teardown-start"
	TeardownSkipped Type = "teardown-skipped"
	TeardownEnd     Type = "teardown-end"
	// BuildEnd is the last event: Exit, the program's exit status, and
	// Duration since BuildStart.
	BuildEnd Type = "build-end"
)

// Statuses of StepEnd and TeardownEnd.
const (
	OK     = "ok"
	Failed = "failed"
)

// TimeFormat is the layout of Event.Time (time.Format's).
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Event is one line of the stream. Fields that do not apply to a type are
// left out of its JSON.
type Event struct {
	Type Type `json:"event"`
	// Time is when the event happened, RFC 3339 in UTC with milliseconds.
	Time string `json:"time"`
	// Spec, Steps and Seed: BuildStart's spec file ("<stdin>" for -), how
	// many steps its plan has and the seed of the build's identifiers.
	Spec  string `json:"spec,omitempty"`
	Steps int    `json:"steps,omitempty"`
	Seed  string `json:"seed,omitempty"`
	// Step is the 1-based number of the step the event belongs to; Kind is
	// the step's kind as the spec wrote it, File and Line where it is.
	Step int    `json:"step,omitempty"`
	Kind string `json:"kind,omitempty"`
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Status is StepEnd's and TeardownEnd's outcome (OK or Failed).
	Status string `json:"status,omitempty"`
	// Duration is in seconds (StepEnd, TeardownEnd, BuildEnd).
	Duration *float64 `json:"duration,omitempty"`
	Argv     []string `json:"argv,omitempty"`
	Text     string   `json:"text,omitempty"`
	// Exit is BuildEnd's exit status: 0 success, 1 failure, 2 a wrong
	// command line, 128+N stopped by signal N.
	Exit *int `json:"exit,omitempty"`
}

// Seconds returns d as an event's Duration.
func Seconds(d time.Duration) *float64 {
	s := float64(d.Milliseconds()) / 1000
	return &s
}

// ExitStatus returns code as BuildEnd's Exit.
func ExitStatus(code int) *int { return &code }

// Writer writes events to a stream, one JSON object per line; it is safe
// for concurrent use, and each line is written whole with one Write.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewWriter returns a Writer on w that stamps events with now's time.
func NewWriter(w io.Writer, now func() time.Time) *Writer {
	return &Writer{w: w, now: now}
}

// Write stamps e with the time and writes it. A stream that cannot be
// written (a reader that went away) loses the event; the build goes on,
// as it does when its human display cannot be written.
func (w *Writer) Write(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.Time = w.now().UTC().Format(TimeFormat)
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false) // shell commands are full of < > &
	if err := enc.Encode(e); err != nil {
		return // an Event has only strings and numbers: cannot happen
	}
	_, _ = w.w.Write(line.Bytes())
}
