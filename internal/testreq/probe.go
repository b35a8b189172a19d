package testreq

import (
	"fmt"
	"runtime"
	"testing"
)

// Outcome is what a check did to Probe's stand-in test.
type Outcome struct {
	Failed  bool
	Skipped bool
	Message string // the last failure or skip message
}

func (o Outcome) String() string {
	switch {
	case o.Failed:
		return "failed: " + o.Message
	case o.Skipped:
		return "skipped: " + o.Message
	}
	return "passed"
}

// Probe runs check against a stand-in for t that behaves as the suite does
// with -short set to short and VMDB2_TEST_SKIP set to skip, and returns
// what check did to it. A Fatal or Skip ends check, as in a real test;
// everything else (TempDir, Cleanup, Log, ...) goes to t.
func Probe(t testing.TB, short bool, skip string, check func(testing.TB)) Outcome {
	t.Helper()
	p := &probe{TB: t, s: settings{short: short, skip: skip}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(p)
	}()
	<-done
	return p.out
}

// probe records failures and skips instead of reporting them; FailNow and
// SkipNow end the check's goroutine as they end a test's.
type probe struct {
	testing.TB
	s   settings
	out Outcome
}

func (p *probe) settings() settings { return p.s }

func (p *probe) Fail()                     { p.out.Failed = true }
func (p *probe) Failed() bool              { return p.out.Failed }
func (p *probe) Skipped() bool             { return p.out.Skipped }
func (p *probe) Error(args ...any)         { p.fail(fmt.Sprintln(args...)) }
func (p *probe) Errorf(f string, a ...any) { p.fail(fmt.Sprintf(f, a...)) }
func (p *probe) FailNow()                  { p.out.Failed = true; runtime.Goexit() }
func (p *probe) Fatal(args ...any)         { p.fail(fmt.Sprintln(args...)); runtime.Goexit() }
func (p *probe) Fatalf(f string, a ...any) { p.fail(fmt.Sprintf(f, a...)); runtime.Goexit() }
func (p *probe) SkipNow()                  { p.out.Skipped = true; runtime.Goexit() }
func (p *probe) Skip(args ...any)          { p.skip(fmt.Sprintln(args...)) }
func (p *probe) Skipf(f string, a ...any)  { p.skip(fmt.Sprintf(f, a...)) }

func (p *probe) fail(msg string) {
	p.out.Failed = true
	p.out.Message = msg
}

func (p *probe) skip(msg string) {
	p.out.Skipped = true
	p.out.Message = msg
	runtime.Goexit()
}
