package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/steps"
)

// clearLine returns the cursor to the start of the line and erases it.
const clearLine = "\r\x1b[K"

// statusLine is the display on a terminal without -v: one line, rewritten
// in place, naming the running step (3/14, its kind as written, file:line,
// the time it has taken, what it is doing: "3/14 debootstrap spec.vmdb:12
// 1m02s: unpacking libc6"), which becomes one short summary line when the
// step ends ("3/14 debootstrap spec.vmdb:12 done in 1m40s").
type statusLine struct {
	mu    sync.Mutex
	out   io.Writer
	width func() int
	now   func() time.Time

	text     string // the step part of the line ("" when none is shown)
	activity string // what the step is doing, from its output or messages
	started  time.Time
	drawn    bool // the line is on the terminal

	teardowns     int
	teardownStart time.Time
	stop          chan struct{}
}

// terminalWidth returns the columns of the terminal fd is, or 0 when fd is
// not a terminal.
func terminalWidth(fd int) int {
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

// newStatusLine returns the status line for w when w is a terminal, else
// nil.
func newStatusLine(w io.Writer) *statusLine {
	f, ok := w.(*os.File)
	if !ok || terminalWidth(int(f.Fd())) == 0 {
		return nil
	}
	fd := int(f.Fd())
	return &statusLine{out: w, now: time.Now, width: func() int { return max(terminalWidth(fd), 20) }}
}

// event updates the line from one of the runner's events.
func (s *statusLine) event(e steps.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Kind {
	case steps.StepStart, steps.TeardownStart:
		s.begin(e)
	case steps.StepSkipped:
		s.summary(fmt.Sprintf("%s skipped: unless %s", stepLabel(e), e.Step.Unless.Describe()))
	case steps.StepEnd:
		verdict := "done in"
		if e.Err != nil {
			verdict = "failed after"
		}
		s.summary(fmt.Sprintf("%s %s %s", stepLabel(e), verdict, elapsed(e.Duration)))
	case steps.TeardownEnd:
		s.text = ""
		s.draw()
	case steps.Output, steps.Message:
		if a := activity(e.Text, e.Kind == steps.Message); a != "" {
			s.activity = a
			s.draw()
		}
	}
}

func (s *statusLine) begin(e steps.Event) {
	s.text, s.activity, s.started = stepLabel(e), "", s.now()
	if e.Kind == steps.TeardownStart {
		if s.teardowns == 0 {
			s.teardownStart = s.started
		}
		s.teardowns++
		s.text = "teardown " + s.text
	}
	s.draw()
	if s.stop == nil {
		s.stop = make(chan struct{})
		go s.tick(s.stop)
	}
}

// tick redraws the line every second, so that the elapsed time moves while
// a step prints nothing.
func (s *statusLine) tick(stop chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.mu.Lock()
			s.draw()
			s.mu.Unlock()
		}
	}
}

// summary replaces the line with a finished step's line.
func (s *statusLine) summary(line string) {
	fmt.Fprintf(s.out, "%s%s\n", clearLine, s.fit(line))
	s.text, s.activity, s.drawn = "", "", false
}

func (s *statusLine) draw() {
	if s.text == "" {
		if s.drawn {
			io.WriteString(s.out, clearLine)
			s.drawn = false
		}
		return
	}
	line := s.text + " " + elapsed(s.now().Sub(s.started).Truncate(time.Second))
	if s.activity != "" {
		line += ": " + s.activity
	}
	io.WriteString(s.out, clearLine+s.fit(line))
	s.drawn = true
}

// fit cuts line to the terminal's width less one column: a line that
// wrapped could not be rewritten in place.
func (s *statusLine) fit(line string) string {
	limit := s.width() - 1
	if utf8.RuneCountInString(line) <= limit {
		return line
	}
	r := []rune(line)
	return string(r[:limit-1]) + "…"
}

// around clears the line for another write to the terminal (an error, a
// warning) and draws it again after.
func (s *statusLine) around(write func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drawn {
		io.WriteString(s.out, clearLine)
	}
	write()
	if s.drawn {
		s.draw()
	}
}

// finish ends the display: the teardowns' summary line, and the ticker
// stopped.
func (s *statusLine) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
	s.text = ""
	s.draw()
	if s.teardowns > 0 {
		fmt.Fprintf(s.out, "%d teardowns done in %s\n", s.teardowns, elapsed(s.now().Sub(s.teardownStart)))
		s.teardowns = 0
	}
}

// statusWriter is a stream of the terminal that the status line is on:
// each write clears the line first and draws it again after.
type statusWriter struct {
	w      io.Writer
	status *statusLine
}

func (sw statusWriter) Write(p []byte) (n int, err error) {
	sw.status.around(func() { n, err = sw.w.Write(p) })
	return n, err
}

// stepLabel is " 3/14 kind file:line", the number padded to the total's
// width so that the summary lines align.
func stepLabel(e steps.Event) string {
	return fmt.Sprintf("%*d/%d %s %s", len(fmt.Sprint(e.Total)), e.Index, e.Total, e.Step.Name(), e.Step.Where())
}

// elapsed renders a duration for the line: 0.42s, 12s, 3m07s.
func elapsed(d time.Duration) string {
	switch {
	case d < 10*time.Second && d != d.Truncate(time.Second):
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// activityPrefixes are the output lines of apt, debootstrap and mmdebstrap
// that say what is being fetched, unpacked or configured, and how the
// status line names it.
var activityPrefixes = []struct{ prefix, verb string }{
	{"Get:", "fetching"},               // apt: Get:12 http://… bookworm/main amd64 libc6 amd64 2.36-9 [2,757 kB]
	{"Unpacking ", "unpacking"},        // apt/dpkg: Unpacking libc6:amd64 (2.36-9) ...
	{"Setting up ", "setting up"},      // apt/dpkg: Setting up libc6:amd64 (2.36-9) ...
	{"I: Retrieving ", "fetching"},     // debootstrap: I: Retrieving libc6 2.36-9
	{"I: Validating ", "checking"},     // debootstrap: I: Validating libc6 2.36-9
	{"I: Extracting ", "extracting"},   // debootstrap: I: Extracting libc6...
	{"I: Unpacking ", "unpacking"},     // debootstrap: I: Unpacking libc6...
	{"I: Configuring ", "configuring"}, // debootstrap: I: Configuring libc6...
}

// activity returns what an output line (or a step's message) says the
// step is doing, or "" when it says nothing the line shows.
func activity(line string, message bool) string {
	if message {
		return line
	}
	for _, a := range activityPrefixes {
		rest, ok := strings.CutPrefix(line, a.prefix)
		if !ok {
			continue
		}
		if a.prefix == "Get:" {
			return a.verb + " " + aptGetPackage(rest)
		}
		name, _, _ := strings.Cut(rest, " ")
		return a.verb + " " + strings.TrimSuffix(name, "...")
	}
	// mmdebstrap's (and debootstrap's other) phases: "I: installing
	// remaining packages inside the chroot..."
	if rest, ok := strings.CutPrefix(line, "I: "); ok {
		return strings.TrimSuffix(rest, "...")
	}
	return ""
}

// aptGetPackage is the package of apt's "Get:N URI SUITE/COMPONENT ARCH
// PACKAGE ARCH VERSION [SIZE]" (its fifth field), or the suite and file of
// the lines that fetch indexes ("Get:1 http://… bookworm InRelease [151 kB]").
func aptGetPackage(rest string) string {
	f := strings.Fields(rest)
	switch {
	case len(f) >= 5 && strings.Contains(f[2], "/"):
		return f[4]
	case len(f) >= 4:
		return f[2] + " " + f[3]
	}
	return rest
}
