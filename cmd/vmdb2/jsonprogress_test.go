package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/events"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// jsonSpec builds a small image without the network: every step kind that
// needs none, a shell step and a chroot step (busybox as the target's sh)
// whose output must arrive as events. Its steps start at the lines
// jsonSpecLines gives.
const jsonSpec = `steps:
  - mkimg: "{{ output }}"
    size: 100M
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - create-dir: /etc
  - create-file: /etc/hello
    contents: hi
  - fstab: /
  - shell: echo from-shell; echo shell-err >&2
    root-fs: /
  - create-dir: /bin
  - copy-file: /bin/sh
    src: busybox
    perm: 0755
  - chroot: /
    shell: echo from-chroot; echo chroot-err >&2
  - echo: done
`

var jsonSpecKinds = []string{"mkimg", "mklabel", "mkpart", "mkfs", "mount", "create-dir", "create-file",
	"fstab", "shell", "create-dir", "copy-file", "chroot", "echo"}

var jsonSpecLines = []int{2, 4, 6, 11, 13, 14, 15, 17, 18, 20, 21, 24, 26}

// needJSONBuild skips (with -short) or fails where the small build cannot
// run: it needs mke2fs, busybox and user namespaces.
func needJSONBuild(t *testing.T) {
	t.Helper()
	testreq.NeedTools(t, "mke2fs", "busybox")
	testreq.Need(t, testreq.Userns, userns.Available())
}

// parseEvents parses every line of stdout as an event: anything else on
// stdout fails the test.
func parseEvents(t *testing.T, stdout string) []events.Event {
	t.Helper()
	if !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout does not end with a newline: %q", stdout)
	}
	var out []events.Event
	for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var e events.Event
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Type == "" || e.Time == "" {
			t.Fatalf("stdout line %d is not an event (%v): %q", i+1, err, line)
		}
		out = append(out, e)
	}
	return out
}

func writeJSONWorkDir(t *testing.T, spec string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	bb, err := testreq.LookTool("busybox")
	if err == nil {
		data, err := os.ReadFile(bb)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "busybox"), data, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestJSONProgress: --progress=json puts one event per line on stdout and
// nothing else, in the build's order: build-start with the plan's length
// and seed, each step's start and end with its kind, file and line, the
// commands and their output (a shell step's and a chroot step's, both
// streams), the echo's message, the teardowns, and build-end with status
// 0. With -v the human progress goes to stderr, stdout stays JSON.
func TestJSONProgress(t *testing.T) {
	needJSONBuild(t)
	dir := writeJSONWorkDir(t, jsonSpec)
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img", "--progress=json", "--seed", "s1", "--export", "out.img.gz")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	evs := parseEvents(t, r.stdout)
	first, last := evs[0], evs[len(evs)-1]
	if first.Type != events.BuildStart || first.Spec != "spec.vmdb" || first.Steps != len(jsonSpecKinds) || first.Seed != "s1" {
		t.Errorf("first event %+v, want build-start of spec.vmdb, %d steps, seed s1", first, len(jsonSpecKinds))
	}
	if last.Type != events.BuildEnd || last.Exit == nil || *last.Exit != 0 || last.Duration == nil {
		t.Errorf("last event %+v, want build-end with exit 0 and a duration", last)
	}
	checkStepSequence(t, evs)
	for _, want := range []struct {
		step int
		text string
	}{{9, "from-shell"}, {9, "shell-err"}, {12, "from-chroot"}, {12, "chroot-err"}} {
		if !hasEvent(evs, events.Event{Type: events.Output, Step: want.step, Text: want.text}) {
			t.Errorf("no output event %q of step %d", want.text, want.step)
		}
	}
	if !hasEvent(evs, events.Event{Type: events.Message, Step: 13, Text: "done"}) {
		t.Error("no message event for the echo step")
	}
	if !hasCommand(evs, 12, []string{"sh", "-ec", "echo from-chroot; echo chroot-err >&2"}) || !hasCommand(evs, 5, nil) {
		t.Error("no command event for the chroot step, or none for the mount's teardown (mke2fs)")
	}
	// The export comes after the steps: its messages belong to none.
	if !hasEvent(evs, events.Event{Type: events.Message, Text: "Exporting out.img.gz as .img.gz"}) {
		t.Error("no message event (of no step) for the export")
	}
	if !hasEvent(evs, events.Event{Type: events.TeardownEnd, Step: 5, Kind: "mount", File: "spec.vmdb", Line: 13, Status: events.OK}) {
		t.Error("no teardown-end of the mount step")
	}

	rv := runVmdb2(t, dir, "", "spec.vmdb", "--output", "v.img", "--progress=json", "-v", "--export", "v.img.gz")
	if rv.code != 0 {
		t.Fatalf("with -v: exit %d, stderr:\n%s", rv.code, rv.stderr)
	}
	if n := len(parseEvents(t, rv.stdout)); n != len(evs) {
		t.Errorf("with -v: %d events, want %d as without", n, len(evs))
	}
	for _, w := range []string{"Step 12/13: chroot / (spec.vmdb:24)", "  chroot| from-chroot", "All went fine."} {
		if !strings.Contains(rv.stderr, w) {
			t.Errorf("with -v, stderr lacks %q:\n%s", w, rv.stderr)
		}
	}
}

// checkStepSequence: the run's events come in order, step by step, each
// step-start before its step-end, the events of a step between them.
func checkStepSequence(t *testing.T, evs []events.Event) {
	t.Helper()
	next := 1 // the step whose start comes next
	inStep := 0
	for _, e := range evs {
		switch e.Type {
		case events.StepStart:
			if e.Step != next || inStep != 0 || e.Kind != jsonSpecKinds[next-1] || e.File != "spec.vmdb" || e.Line != jsonSpecLines[next-1] {
				t.Fatalf("step-start %+v, want step %d (%s, spec.vmdb:%d)", e, next, jsonSpecKinds[next-1], jsonSpecLines[next-1])
			}
			inStep = next
		case events.StepEnd:
			if e.Step != inStep || e.Status != events.OK || e.Duration == nil || e.Kind != jsonSpecKinds[inStep-1] {
				t.Fatalf("step-end %+v, want step %d ok with a duration", e, inStep)
			}
			inStep, next = 0, next+1
		case events.Command, events.Output, events.Message:
			if next <= len(jsonSpecKinds) && e.Step != inStep {
				t.Fatalf("%s of step %d outside step %d: %+v", e.Type, e.Step, inStep, e)
			}
		case events.TeardownStart:
			if next <= len(jsonSpecKinds) {
				t.Fatalf("teardown before step %d ran: %+v", next, e)
			}
		}
	}
	if next != len(jsonSpecKinds)+1 {
		t.Errorf("%d steps ended, want %d", next-1, len(jsonSpecKinds))
	}
}

// hasEvent reports whether an event has want's fields (the time, the
// duration and the argv not compared).
func hasEvent(evs []events.Event, want events.Event) bool {
	for _, e := range evs {
		e.Time, e.Duration, e.Argv = "", nil, nil
		if e.Type == want.Type && e.Step == want.Step && e.Text == want.Text && e.Kind == want.Kind &&
			e.File == want.File && e.Line == want.Line && e.Status == want.Status {
			return true
		}
	}
	return false
}

// hasCommand reports whether step ran argv (any command, for nil).
func hasCommand(evs []events.Event, step int, argv []string) bool {
	for _, e := range evs {
		if e.Type == events.Command && e.Step == step && (argv == nil || strings.Join(e.Argv, "\x00") == strings.Join(argv, "\x00")) {
			return true
		}
	}
	return false
}

// TestJSONProgressFailure: a failing step gives its step-end "failed", an
// error event with its kind, file and line, the teardowns, and build-end
// with exit 1; a spec refused before the build gives its errors with file
// and line between build-start (no plan) and build-end.
func TestJSONProgressFailure(t *testing.T) {
	needJSONBuild(t)
	t.Run("step", func(t *testing.T) {
		spec := strings.Replace(jsonSpec, "  - create-dir: /etc\n", "", 1)
		r := runVmdb2(t, writeJSONWorkDir(t, spec), "", "spec.vmdb", "--output", "out.img", "--progress=json")
		if r.code != 1 || !strings.Contains(r.stderr, "ERROR: spec.vmdb:14: create-file: ") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		evs := parseEvents(t, r.stdout)
		if !hasEvent(evs, events.Event{Type: events.StepEnd, Step: 6, Kind: "create-file", File: "spec.vmdb", Line: 14, Status: events.Failed}) {
			t.Error("no failed step-end of step 6")
		}
		var failure *events.Event
		for i := range evs {
			if evs[i].Type == events.Error && evs[i].Step == 6 {
				failure = &evs[i]
			}
		}
		if failure == nil || failure.File != "spec.vmdb" || failure.Line != 14 || failure.Kind != "create-file" ||
			!strings.HasPrefix(failure.Text, "create-file: cannot create /etc/hello") {
			t.Errorf("error event %+v, want create-file's error at spec.vmdb:14", failure)
		}
		if !hasEvent(evs, events.Event{Type: events.TeardownEnd, Step: 5, Kind: "mount", File: "spec.vmdb", Line: 13, Status: events.OK}) {
			t.Error("no teardown of the mount after the failure")
		}
		if last := evs[len(evs)-1]; last.Type != events.BuildEnd || last.Exit == nil || *last.Exit != 1 {
			t.Errorf("last event %+v, want build-end with exit 1", last)
		}
	})
	t.Run("plan", func(t *testing.T) {
		spec := jsonSpec + "  - no-such-step: x\n"
		r := runVmdb2(t, writeJSONWorkDir(t, spec), "", "spec.vmdb", "--output", "out.img", "--progress=json")
		evs := parseEvents(t, r.stdout)
		if r.code != 1 || len(evs) != 3 {
			t.Fatalf("exit %d, %d events, want 1 and 3:\n%s", r.code, len(evs), r.stdout)
		}
		if evs[0].Type != events.BuildStart || evs[0].Steps != 0 || evs[0].Seed != "" {
			t.Errorf("first event %+v, want build-start without a plan", evs[0])
		}
		if e := evs[1]; e.Type != events.Error || e.File != "spec.vmdb" || e.Line != 27 || !strings.Contains(e.Text, "no-such-step") {
			t.Errorf("second event %+v, want the error at spec.vmdb:27", e)
		}
		if e := evs[2]; e.Type != events.BuildEnd || *e.Exit != 1 {
			t.Errorf("last event %+v, want build-end with exit 1", e)
		}
	})
}

// TestJSONProgressUsage: what cannot stream JSON alone on stdout is a
// usage error.
func TestJSONProgressUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--progress=json", "--dry-run", "spec.vmdb"},
		{"--progress=json", "--check-reproducible", "--output", "x.img", "spec.vmdb"},
		{"--progress=xml", "--output", "x.img", "spec.vmdb"},
	} {
		r := runVmdb2(t, t.TempDir(), "", args...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "--progress") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 naming --progress", args, r.code, r.stdout, r.stderr)
		}
	}
}
