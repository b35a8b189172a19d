package steps

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recorder is an Observer that keeps progress messages and events.
type recorder struct {
	mu     sync.Mutex
	lines  []string
	output []string
	execs  [][]string
}

func (r *recorder) Event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case Message:
		r.lines = append(r.lines, e.Text)
	case Output:
		r.output = append(r.output, e.Text)
	case Exec:
		r.execs = append(r.execs, e.Argv)
	}
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, ",")
}

// testKinds are step kinds for exercising the runner.
func testRegistry(extra ...*Kind) *Registry {
	setflag := &Kind{Name: "setflag", Summary: "set a flag", Implemented: true,
		Keys: []Key{{Name: "setflag", Type: TStr, Required: true}},
		Run: func(b *Build, s *Step) error {
			b.Progress("set %s", s.Str("setflag"))
			b.State.SetFlag(s.Str("setflag"))
			return nil
		},
	}
	failteardown := &Kind{Name: "failteardown", Summary: "teardown fails", Implemented: true,
		Keys:     []Key{{Name: "failteardown", Type: TStr, Required: true}},
		Teardown: func(b *Build, s *Step) error { return errors.New("teardown broke") },
	}
	panicky := &Kind{Name: "panicky", Summary: "panics", Implemented: true,
		Keys: []Key{{Name: "panicky", Type: TStr, Required: true}},
		Run:  func(b *Build, s *Step) error { var m map[string]int; m["x"] = 1; return nil },
	}
	kinds := append([]*Kind{echoKind, errorKind, setflag, failteardown, panicky}, extra...)
	return NewRegistry(kinds...)
}

func runSpec(t *testing.T, reg *Registry, spec string) (Result, *recorder) {
	t.Helper()
	p, ds := planText(t, reg, spec, Vars{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	rec := &recorder{}
	b := NewBuild(p, Settings{Arch: "amd64"}, rec)
	return b.Run(context.Background(), context.Background()), rec
}

func TestRunOrderAndTeardowns(t *testing.T) {
	res, rec := runSpec(t, testRegistry(), `steps:
- echo: foo
  teardown: foo_teardown
- error: yikes
  teardown: WAT?!
- echo: bar
  teardown: bar_teardown
`)
	if res.Failed == nil || res.Failed.Index != 1 || !strings.Contains(res.Err.Error(), "t.vmdb:4: error: an error occurred") {
		t.Fatalf("result %+v", res)
	}
	if got := rec.text(); got != "foo,yikes,WAT?!,foo_teardown" {
		t.Errorf("order %s", got)
	}
}

func TestUnless(t *testing.T) {
	res, rec := runSpec(t, testRegistry(), `steps:
- echo: a
  teardown: a_td
  unless: rootfs_unpacked
- setflag: rootfs_unpacked
- echo: b
  unless: rootfs_unpacked
- echo: c
  unless: []
- echo: d
  unless: [arch, tags]
- echo: e
  unless: ""
- echo: f
  unless: [arch, nosuch]
`)
	if !res.OK() {
		t.Fatal(res)
	}
	// a runs, but its teardown is skipped: unless is evaluated again at
	// teardown, and the flag became true after it ran (vmdb2 semantics).
	if got := rec.text(); got != "a,set rootfs_unpacked,e,f" {
		t.Errorf("got %s", got)
	}
}

func TestTeardownFailureMakesResultBad(t *testing.T) {
	res, rec := runSpec(t, testRegistry(), "steps:\n- echo: a\n  teardown: a_td\n- failteardown: x\n- echo: b\n")
	if res.Err != nil || len(res.TeardownErrors) != 1 || res.OK() {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.TeardownErrors[0].Error(), "t.vmdb:4: teardown of failteardown: teardown broke") {
		t.Errorf("error %v", res.TeardownErrors[0])
	}
	// Keep going: the earlier step's teardown still ran.
	if got := rec.text(); got != "a,b,a_td" {
		t.Errorf("got %s", got)
	}
}

func TestPanicInStepIsAnError(t *testing.T) {
	res, rec := runSpec(t, testRegistry(), "steps:\n- echo: a\n  teardown: a_td\n- panicky: x\n")
	if res.Err == nil || !strings.Contains(res.Err.Error(), "internal error") {
		t.Fatalf("result %+v", res)
	}
	if got := rec.text(); got != "a,a_td" {
		t.Errorf("teardowns did not run: %s", got)
	}
}

func TestCommandOutputAndFailure(t *testing.T) {
	cmdKind := &Kind{Name: "cmd", Summary: "run sh", Implemented: true,
		Keys: []Key{{Name: "cmd", Type: TStr, Required: true}},
		Run: func(b *Build, s *Step) error {
			return b.Command([]string{"sh", "-c", s.Str("cmd")}, CommandOptions{})
		},
	}
	res, rec := runSpec(t, testRegistry(cmdKind), "steps:\n- cmd: 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo line$i; done; echo oops >&2; exit 3'\n")
	if res.Err == nil {
		t.Fatal("no error")
	}
	msg := res.Err.Error()
	if !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "line15") || !strings.Contains(msg, "oops") || strings.Contains(msg, "line3\n") {
		t.Errorf("error should carry the last lines: %s", msg)
	}
	if len(rec.output) != 16 || len(rec.execs) != 1 {
		t.Errorf("output %d lines, %d execs", len(rec.output), len(rec.execs))
	}
	res, _ = runSpec(t, testRegistry(cmdKind), "steps:\n- cmd: 'exec /nonexistent/prog'\n")
	if res.Err == nil {
		t.Fatal("no error for a missing program")
	}
}

// TestInterruptKillsProcessGroup cancels the build while a step runs a
// command that started a background child; both must be gone, and the
// teardowns must still run.
func TestInterruptKillsProcessGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	pidFile := t.TempDir() + "/pids"
	cmdKind := &Kind{Name: "cmd", Summary: "run sh", Implemented: true,
		Keys: []Key{{Name: "cmd", Type: TStr, Required: true}},
		Run: func(b *Build, s *Step) error {
			return b.Command([]string{"sh", "-c", s.Str("cmd")}, CommandOptions{})
		},
	}
	spec := "steps:\n- echo: before\n  teardown: cleaned\n- cmd: 'trap \"\" TERM; sleep 300 & echo $! > " + pidFile + "; echo $$ >> " + pidFile + "; wait'\n- echo: after\n"
	p, ds := planText(t, testRegistry(cmdKind), spec, Vars{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for i := 0; i < 100; i++ {
			if data, _ := os.ReadFile(pidFile); strings.Count(string(data), "\n") == 2 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	res := NewBuild(p, Settings{}, rec).Run(ctx, context.Background())
	if !res.Interrupted || !errors.Is(res.Err, ErrInterrupted) {
		t.Fatalf("result %+v", res)
	}
	if got := rec.text(); got != "before,cleaned" {
		t.Errorf("got %s", got)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("stopping took %v", time.Since(start))
	}
	data, _ := os.ReadFile(pidFile)
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		// A zombie would still answer kill(0); give reaping a moment.
		gone := false
		for i := 0; i < 50 && !gone; i++ {
			gone = syscall.Kill(pid, 0) != nil || isZombie(pid)
			time.Sleep(20 * time.Millisecond)
		}
		if !gone {
			t.Errorf("process %d survived the interrupt", pid)
		}
	}
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] == "Z"
}
