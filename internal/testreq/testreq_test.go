package testreq

import (
	"errors"
	"strings"
	"testing"
)

// TestNeed: a missing prerequisite fails the test with the error, the
// group's fix and the opt-out; only -short and the opt-out skip it, and
// the opt-out skips the group's tests whatever the host has.
func TestNeed(t *testing.T) {
	missing := errors.New("qemu-system-x86_64 not found")
	cases := []struct {
		name        string
		short       bool
		skip        string
		err         error
		want        string // "failed", "skipped" or "passed"
		wantMessage []string
	}{
		{"missing fails", false, "", missing, "failed",
			[]string{"qemu-system-x86_64 not found", "make deps", "VMDB2_TEST_SKIP=boot"}},
		{"another group listed", false, "foreign, root", missing, "failed", []string{"make deps"}},
		{"missing under -short", true, "", missing, "skipped", []string{"-short", "qemu-system-x86_64 not found"}},
		{"opted out", false, "foreign,boot", missing, "skipped", []string{"VMDB2_TEST_SKIP lists boot"}},
		{"opted out, host has it", false, " boot ", nil, "skipped", []string{"VMDB2_TEST_SKIP lists boot"}},
		{"present", false, "", nil, "passed", nil},
		{"present under -short", true, "", nil, "passed", nil},
		{"typo", false, "boto", nil, "failed", []string{`unknown group "boto"`, "boot, foreign, network, root, tools, userns"}},
		{"typo under -short", true, "boot,x", missing, "failed", []string{`unknown group "x"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Probe(t, c.short, c.skip, func(t testing.TB) { Need(t, Boot, c.err) })
			if got := strings.SplitN(o.String(), ":", 2)[0]; got != c.want {
				t.Fatalf("%s, want %s", o, c.want)
			}
			for _, w := range c.wantMessage {
				if !strings.Contains(o.Message, w) {
					t.Errorf("message %q lacks %q", o.Message, w)
				}
			}
		})
	}
}

// TestNeedEndsTheTest: a failure or a skip ends the check, as t.Fatal and
// t.Skip end a test.
func TestNeedEndsTheTest(t *testing.T) {
	for _, short := range []bool{false, true} {
		reached := false
		Probe(t, short, "", func(t testing.TB) {
			Need(t, Tools, errors.New("missing"))
			reached = true
		})
		if reached {
			t.Errorf("short=%v: the check went on after Need", short)
		}
	}
}

func TestNeedRoot(t *testing.T) {
	old := geteuid
	t.Cleanup(func() { geteuid = old })
	geteuid = func() int { return 1000 }
	o := Probe(t, false, "", func(t testing.TB) { NeedRoot(t, "to switch to the test user") })
	if !o.Failed || !strings.Contains(o.Message, "needs root to switch to the test user, and runs as uid 1000") ||
		!strings.Contains(o.Message, "sudo make check") || !strings.Contains(o.Message, "VMDB2_TEST_SKIP=root") {
		t.Errorf("as uid 1000: %s", o)
	}
	if o := Probe(t, false, "root", func(t testing.TB) { NeedRoot(t, "x") }); !o.Skipped {
		t.Errorf("as uid 1000, root opted out: %s", o)
	}
	geteuid = func() int { return 0 }
	if o := Probe(t, false, "", func(t testing.TB) { NeedRoot(t, "x") }); o.Failed || o.Skipped {
		t.Errorf("as root: %s", o)
	}
}

func TestNeedTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	o := Probe(t, false, "", func(t testing.TB) { NeedTools(t, "sh", "no-such-tool-vmdb2", "mke2fs-vmdb2-none") })
	if !o.Failed || !strings.Contains(o.Message, "no-such-tool-vmdb2, mke2fs-vmdb2-none not found") ||
		!strings.Contains(o.Message, ".ci/host-packages") || !strings.Contains(o.Message, "VMDB2_TEST_SKIP=tools") {
		t.Errorf("missing tools: %s", o)
	}
	if o := Probe(t, true, "", func(t testing.TB) { NeedTools(t, "no-such-tool-vmdb2") }); !o.Skipped {
		t.Errorf("missing tools under -short: %s", o)
	}
}

func TestUnknownGroup(t *testing.T) {
	if o := Probe(t, true, "", func(t testing.TB) { Need(t, "nope", nil) }); !o.Failed {
		t.Errorf("unknown group in the test: %s", o)
	}
}

// TestLong: a long test is skipped unless VMDB2_TEST_LONG is 1, with the
// way to run it, and runs when it is.
func TestLong(t *testing.T) {
	for val, skipped := range map[string]bool{"": true, "0": true, "yes": true, "1": false} {
		t.Setenv(LongEnv, val)
		o := Probe(t, false, "", func(tb testing.TB) { Long(tb, "35 minutes") })
		if o.Skipped != skipped || o.Failed {
			t.Errorf("%s=%q: %v, want skipped %v", LongEnv, val, o, skipped)
		}
		if skipped && !strings.Contains(o.Message, "make check-long") {
			t.Errorf("%s=%q: the skip does not say how to run it: %q", LongEnv, val, o.Message)
		}
	}
}
