package steps

import (
	"context"
	"errors"
	"fmt"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// orphanEnv makes the test binary a build whose one step starts a long
// command, through the runner entry point the variable names, and waits.
const orphanEnv = "VMDB2_STEPS_TEST_ORPHAN"

// runnerEntries are the runner's entry points, as a step calls them.
var runnerEntries = map[string]func(b *Build, argv []string) error{
	"command": func(b *Build, argv []string) error { return b.Command(argv, CommandOptions{}) },
	"tool": func(b *Build, argv []string) error {
		return b.ToolRunner()(b.Context(), fstool.Command{Args: argv})
	},
	"namespace": func(b *Build, argv []string) error { return b.InNamespace(userns.Cmd{Argv: argv}) },
}

// cmdKind runs its `cmd` with sh through the entry point of its `via`.
var cmdKind = &Kind{Name: "cmd", Summary: "run sh", Implemented: true,
	Keys: []Key{{Name: "cmd", Type: TStr, Required: true}, {Name: "via", Type: TStr, Default: "command"}},
	Run: func(b *Build, s *Step) error {
		return runnerEntries[s.Str("via")](b, []string{"sh", "-c", s.Str("cmd")})
	},
}

func orphanHelper(mode string) {
	spec := fmt.Sprintf("steps:\n- cmd: 'echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 3217'\n  via: %s\n",
		os.Getenv("PIDFILE"), os.Getenv("PIDFILE"), os.Getenv("PIDFILE"), mode)
	raw, ds := Load("orphan.vmdb", []byte(spec))
	plan, pds := NewPlan(testRegistry(cmdKind), raw, Vars{})
	if ds.HasErrors() || pds.HasErrors() {
		fmt.Fprintln(os.Stderr, ds, pds)
		os.Exit(3)
	}
	res := NewBuild(plan, Settings{}, &recorder{}).Run(context.Background(), context.Background())
	fmt.Fprintln(os.Stderr, "the step ended:", res.Err)
	os.Exit(4)
}

// TestRunnerChildDiesWithBuild SIGKILLs a build (which cannot clean up)
// while its step runs a program: the program must die with it, through
// every entry point of the runner (as root, the tool runner starts host
// processes).
func TestRunnerChildDiesWithBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, mode := range []string{"command", "tool"} {
		t.Run(mode, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			helper := exec.Command(os.Args[0], "-test.run=^$")
			helper.Env = append(os.Environ(), orphanEnv+"="+mode, "PIDFILE="+pidFile)
			helper.Stderr = os.Stderr
			if err := helper.Start(); err != nil {
				t.Fatal(err)
			}
			pid := waitPid(t, pidFile, helper)
			helper.Process.Kill()
			helper.Wait()
			if !gone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the step's program (pid %d) survived the SIGKILLed build", pid)
			}
		})
	}
}

// waitPid waits for the helper's command to write its pid.
func waitPid(t *testing.T, file string, helper *exec.Cmd) int {
	t.Helper()
	for i := 0; i < 400; i++ {
		if data, err := os.ReadFile(file); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			// Let sh exec sleep.
			time.Sleep(50 * time.Millisecond)
			return pid
		}
		time.Sleep(25 * time.Millisecond)
	}
	helper.Process.Kill()
	t.Fatal("the helper build never ran its command")
	return 0
}

// gone reports whether pid ends (or is a zombie) within a few seconds.
func gone(pid int) bool {
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			return true
		}
		time.Sleep(30 * time.Millisecond)
	}
	return false
}

// TestRunnerKillsGroupOnCancel: whatever the entry point, cancelling the
// build kills the command and the background child it started, which
// ignores SIGTERM.
func TestRunnerKillsGroupOnCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, via := range []string{"command", "tool"} {
		t.Run(via, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			spec := "steps:\n- cmd: 'trap \"\" TERM; sleep 3218 & echo $! > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; wait'\n  via: " + via + "\n"
			p, ds := planText(t, testRegistry(cmdKind), spec, Vars{})
			if ds.HasErrors() {
				t.Fatal(ds)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan Result)
			go func() { done <- NewBuild(p, Settings{}, &recorder{}).Run(ctx, context.Background()) }()
			child := waitPid(t, pidFile, &exec.Cmd{Process: &os.Process{}})
			cancel()
			res := <-done
			if !errors.Is(res.Err, ErrInterrupted) {
				t.Errorf("result %+v", res)
			}
			if !gone(child) {
				syscall.Kill(child, syscall.SIGKILL)
				t.Errorf("the background child %d survived the interrupt", child)
			}
		})
	}
}

// TestRunnerEventsAndTail: each command is reported once and each output
// line once, also when the caller collects the output itself (the fs
// package's tools; no tail is then added, the caller says what failed);
// otherwise a failure's error carries the last lines, in the namespace as
// on the host.
func TestRunnerEventsAndTail(t *testing.T) {
	collect := &Kind{Name: "collect", Summary: "collect output", Implemented: true,
		Keys: []Key{{Name: "collect", Type: TStr, Required: true}},
		Run: func(b *Build, s *Step) error {
			out, err := fstool.Run(b.Context(), b.ToolRunner(), []string{"sh", "-c", s.Str("collect")}, nil)
			if err == nil && out != "out\n" {
				return fmt.Errorf("stdout %q", out)
			}
			return err
		},
	}
	res, rec := runSpec(t, testRegistry(collect), "steps:\n- collect: 'echo out; echo err >&2'\n")
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	sort.Strings(rec.output)
	if len(rec.execs) != 1 || strings.Join(rec.output, ",") != "err,out" {
		t.Errorf("execs %v, output %q", rec.execs, rec.output)
	}
	res, _ = runSpec(t, testRegistry(collect), "steps:\n- collect: 'echo reason-$((40+2)) >&2; exit 2'\n")
	if res.Err == nil || strings.Count(res.Err.Error(), "reason-42") != 1 {
		t.Errorf("want the reason once: %v", res.Err)
	}

	if testing.Short() {
		return
	}
	testreq.Need(t, testreq.Userns, userns.Available())
	res, rec = runSpec(t, testRegistry(cmdKind), "steps:\n- cmd: 'for i in $(seq 1 15); do echo line$i; done; echo oops >&2; exit 3'\n  via: namespace\n")
	if res.Err == nil {
		t.Fatal("no error")
	}
	msg := res.Err.Error()
	if !strings.Contains(msg, "failed with exit status 3") || !strings.Contains(msg, "line15") || !strings.Contains(msg, "oops") || strings.Contains(msg, "line3\n") {
		t.Errorf("error should carry the last lines: %s", msg)
	}
	if len(rec.output) != 16 || len(rec.execs) != 1 {
		t.Errorf("output %d lines, %d execs", len(rec.output), len(rec.execs))
	}
}

// TestFailureShowsWholeCommand: a failed command's error has its whole
// command line, quoted for the shell (a long or multi-line argument is not
// cut), so that it can be copied and run again.
func TestFailureShowsWholeCommand(t *testing.T) {
	long := "echo " + strings.Repeat("x", 100) + "\necho 'quoted' $HOME\nexit 3"
	res, _ := runSpec(t, testRegistry(cmdKind), "steps:\n- cmd: \""+strings.ReplaceAll(long, "\n", "\\n")+"\"\n")
	if res.Err == nil {
		t.Fatal("no error")
	}
	want := "sh -c 'echo " + strings.Repeat("x", 100) + "\necho '\\''quoted'\\'' $HOME\nexit 3' failed with exit status 3"
	if !strings.Contains(res.Err.Error(), want) || strings.Contains(res.Err.Error(), "…") {
		t.Errorf("error %q\nlacks %q", res.Err, want)
	}
	out, err := exec.Command("sh", "-c", strings.TrimSuffix(want, " failed with exit status 3")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "quoted "+os.Getenv("HOME")) {
		t.Errorf("the command line in the error does not run again as it ran: %v %q", err, out)
	}
}

// TestFailureOutputShownOnce: when the user saw a command's output as it
// came (Settings.OutputShown, -v), its failure's error does not repeat the
// last lines; the Output events still carry them.
func TestFailureOutputShownOnce(t *testing.T) {
	p, ds := planText(t, testRegistry(cmdKind), "steps:\n- cmd: 'echo reason-$((40+2)) >&2; exit 2'\n", Vars{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	for _, shown := range []bool{false, true} {
		rec := &recorder{}
		res := NewBuild(p, Settings{OutputShown: shown}, rec).Run(context.Background(), context.Background())
		if res.Err == nil || !strings.Contains(res.Err.Error(), "failed with exit status 2") {
			t.Fatalf("OutputShown %v: error %v", shown, res.Err)
		}
		if n, want := strings.Count(res.Err.Error(), "reason-42"), map[bool]int{false: 1, true: 0}[shown]; n != want {
			t.Errorf("OutputShown %v: the output is in the error %d times, want %d: %v", shown, n, want, res.Err)
		}
		if strings.Join(rec.output, ",") != "reason-42" {
			t.Errorf("OutputShown %v: output events %q", shown, rec.output)
		}
	}
}
