package bootstrap

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// TestEngineOutputShownOnce: with a build's Runner, the engine's output
// streams are left to the runner (which reports each line and decides
// whether its error carries the last ones) and this package's error adds
// none, so a failure's output is not printed twice; with userns.Run the
// error carries the tail.
func TestEngineOutputShownOnce(t *testing.T) {
	var gotStdout, gotStderr io.Writer
	run := func(ctx context.Context, c userns.Cmd) error {
		gotStdout, gotStderr = c.Stdout, c.Stderr
		return errors.New("mmdebstrap … failed with exit status 25; its last output:\n    E: the reason")
	}
	o := Options{Suite: "nosuch", Target: "/t", Run: run}
	err := runEngine(context.Background(), o, []string{"mmdebstrap"}, nil, nil)
	if gotStdout != nil || gotStderr != nil {
		t.Errorf("the runner was given streams (%v, %v): it would not report the output itself", gotStdout, gotStderr)
	}
	if err == nil || strings.Count(err.Error(), "the reason") != 1 || strings.Contains(err.Error(), "  | ") {
		t.Errorf("error %v: want the runner's message once, no tail of this package's", err)
	}

	stdout, stderr, tail := commandStreams(nil, nil, nil)
	io.WriteString(stdout, "I: one\n")
	io.WriteString(stderr, "E: the reason\n")
	if got := tail.lastLines(12); got != "\n  | I: one\n  | E: the reason" {
		t.Errorf("without a runner the tail is %q", got)
	}
}
