package main

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/steps"
)

// TestSignalsStopAndCleanUp sends SIGINT, SIGTERM or SIGHUP to the process
// while a step runs: the step must stop, the teardowns run, and the exit
// status be 130, 143 or 129.
func TestSignalsStopAndCleanUp(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, exitInterrupted}, {syscall.SIGTERM, exitTerminated}, {syscall.SIGHUP, exitHangup}} {
		t.Run(c.sig.String(), func(t *testing.T) {
			started := make(chan struct{})
			wait := &steps.Kind{Name: "wait", Summary: "wait until interrupted", Implemented: true,
				Keys: []steps.Key{{Name: "wait", Type: steps.TStr, Required: true}},
				Run: func(b *steps.Build, s *steps.Step) error {
					close(started)
					select {
					case <-b.Context().Done():
						return b.Context().Err()
					case <-time.After(30 * time.Second):
						return nil
					}
				},
			}
			echo := steps.DefaultRegistry().Lookup("echo")
			reg := steps.NewRegistry(echo, wait)
			raw, ds := steps.Load("sig.vmdb", []byte("steps:\n- echo: first\n  teardown: torn_down\n- wait: x\n- echo: never\n"))
			plan, pds := steps.NewPlan(reg, raw, steps.Vars{})
			if ds.HasErrors() || pds.HasErrors() {
				t.Fatal(ds, pds)
			}
			var out, errb bytes.Buffer
			disp := &display{verbose: true, stdout: &out, stderr: &errb, now: time.Now}
			done := make(chan int)
			go func() { done <- build(&options{output: "x.img"}, plan, disp) }()
			<-started
			if err := syscall.Kill(syscall.Getpid(), c.sig); err != nil {
				t.Fatal(err)
			}
			var code int
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("build did not stop")
			}
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			if !followedBy(out.String(), "Something went wrong, cleaning up!", "torn_down") || strings.Contains(out.String(), "never") {
				t.Errorf("stdout:\n%s", out.String())
			}
			if !strings.Contains(errb.String(), "received, stopping and cleaning up") {
				t.Errorf("stderr:\n%s", errb.String())
			}
		})
	}
}
