package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// EventKind says what happened during a build.
type EventKind int

// Build events, reported to the Observer in the order they happen.
const (
	StepStart EventKind = iota
	StepSkipped
	StepEnd // Err set on failure
	TeardownStart
	TeardownSkipped
	TeardownEnd // Err set on failure
	Message     // a progress message of a step (echo text and the like)
	Exec        // an external command is started: Argv
	Output      // one line of an external command's output: Text
	Detail      // detail for the log only: Text
	Warn        // a warning: Text
	RunFailed   // the run phase stopped early (Err); teardowns follow
)

// Event is one thing that happened during a build.
type Event struct {
	Kind     EventKind
	Step     *Step
	Index    int // 1-based step number
	Total    int
	Duration time.Duration
	Err      error
	Text     string
	Argv     []string
}

// Observer receives build events; the command line shows and logs them.
type Observer interface {
	Event(Event)
}

// Settings are the command-line settings steps may use.
type Settings struct {
	Output, Image, RootfsTarball string
	Arch                         string // host architecture (Debian name)
	// Seed decides every identifier the build writes; "" means the plan's
	// DefaultSeed.
	Seed string
	// SourceDateEpoch is every timestamp the build writes (the zero time:
	// SOURCE_DATE_EPOCH was not set).
	SourceDateEpoch time.Time
	// OutputShown says that the observer shows every output line as it
	// comes (-v): a failed command's error then does not repeat its last
	// lines.
	OutputShown bool
	// CleartextDigests, when set, is a file to which each LUKS container's
	// "UUID OFFSET SIZE SHA256" line is appended as it is encrypted
	// (--check-reproducible compares containers by their cleartext).
	CleartextDigests string
	// Compat is the vmdb2 release whose images the build gives where
	// releases differ (compat.go): Compat041 ("" too) or Compat026.
	Compat string
}

// State is what steps leave for later steps: the flags that `unless`
// tests, the architecture, and (later) tags.
type State struct {
	Arch  string
	Tags  Tags
	flags map[string]bool
	lvm   lvmModel // the volume groups made so far (lvm.go)
	// bootLoaders are what the grub steps installed (bootloader.go).
	bootLoaders []BootLoader
}

// SetFlag sets a state flag that `unless` can test (e.g. rootfs_unpacked).
func (st *State) SetFlag(name string) { st.flags[name] = true }

// Flag reports whether a state flag is set and true. As in vmdb2, `arch` and
// `tags` always exist and are true.
func (st *State) Flag(name string) bool {
	switch name {
	case "arch":
		return st.Arch != ""
	case "tags":
		return true
	}
	return st.flags[name]
}

// Build runs a plan.
type Build struct {
	Plan     *Plan
	Settings Settings
	State    *State
	IDs      IDs
	obs      Observer
	current  *Step
	index    int
	ctx      context.Context
	failed   bool
	stage    *stage.Stage
	// devicesTag is the tag whose tree the stage's device manifest
	// describes (set by unpack-rootfs and debootstrap).
	devicesTag string
	// proxy is proxyEnv's result, found once.
	proxy     []string
	proxyOnce sync.Once
	// carries holds, per top-level tree, the mounts shell steps left
	// there (treemounts.go).
	carries map[*Tag]*userns.Carry
	// aptUpdates records this build's apt-get updates, so that an apt
	// run that finds nothing changed since the last one does not repeat
	// it (stage/bootstrap UpdateMemo).
	aptUpdates bootstrap.UpdateMemo
}

// NewBuild prepares a build of plan.
func NewBuild(plan *Plan, settings Settings, obs Observer) *Build {
	seed := settings.Seed
	if seed == "" {
		seed = plan.DefaultSeed()
	}
	return &Build{Plan: plan, Settings: settings, obs: obs, IDs: NewIDs(seed),
		State: &State{Arch: settings.Arch, flags: map[string]bool{}}}
}

// Context is the context of the running step; it is cancelled when the build
// is interrupted during the run phase.
func (b *Build) Context() context.Context { return b.ctx }

func (b *Build) emit(e Event) {
	if e.Step == nil {
		e.Step = b.current
		e.Index = b.index
	}
	e.Total = len(b.Plan.Steps)
	b.obs.Event(e)
}

// Progress reports a step's progress message (shown with -v, always logged).
func (b *Build) Progress(format string, args ...any) {
	b.emit(Event{Kind: Message, Text: fmt.Sprintf(format, args...)})
}

// Detail records a detail in the log only.
func (b *Build) Detail(format string, args ...any) {
	b.emit(Event{Kind: Detail, Text: fmt.Sprintf(format, args...)})
}

// Warnf reports a warning.
func (b *Build) Warnf(format string, args ...any) {
	b.emit(Event{Kind: Warn, Text: fmt.Sprintf(format, args...)})
}

// Result is the outcome of a build.
type Result struct {
	// Failed is the step whose run failed, or nil.
	Failed *Step
	Err    error
	// Interrupted is true when the run phase was stopped by cancellation
	// (SIGINT/SIGTERM in the command line).
	Interrupted bool
	// TeardownErrors lists teardowns that failed.
	TeardownErrors []error
}

// OK reports whether everything, teardowns included, succeeded.
func (r Result) OK() bool {
	return r.Failed == nil && r.Err == nil && !r.Interrupted && len(r.TeardownErrors) == 0
}

// ErrInterrupted is the error of a step stopped by a signal.
var ErrInterrupted = errors.New("interrupted")

// Run runs the steps in order until one fails or ctx is cancelled, then the
// teardowns of every attempted step in reverse order (vmdb2 semantics: the
// failing step is torn down too, `unless` is evaluated again at teardown).
// Teardowns run with teardownCtx, which should outlive ctx so that an
// interrupt still cleans up.
func (b *Build) Run(ctx, teardownCtx context.Context) Result {
	var res Result
	var taken []*Step
	b.ctx = ctx
	for i, s := range b.Plan.Steps {
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		taken = append(taken, s)
		b.current, b.index = s, i+1
		if err := b.runStep(ctx, s); err != nil {
			res.Interrupted = errors.Is(err, ErrInterrupted) // runStep decided it
			res.Failed = s
			res.Err = fmt.Errorf("%s: %s: %w", s.Where(), s.Name(), b.explainNoSpace(err))
			break
		}
	}
	if res.Err == nil && !res.Interrupted {
		if err := b.removeNoise(); err != nil {
			res.Err = fmt.Errorf("normalising the trees for SOURCE_DATE_EPOCH: %w", err)
		}
	}
	b.dropCarried()
	b.ctx = teardownCtx
	b.failed = res.Err != nil || res.Interrupted
	if b.failed {
		b.reportFailure(res)
	}
	b.tearDown(taken, &res)
	b.current, b.index = nil, 0
	if err := b.removeStage(); err != nil {
		res.TeardownErrors = append(res.TeardownErrors, err)
	}
	if err := b.syncDevices(); err != nil {
		res.TeardownErrors = append(res.TeardownErrors, err)
	}
	return res
}

// runStep runs one step (or, when its `unless` holds, only its
// RunEvenIfSkipped part) and emits its events. An error while ctx is done
// is an interruption.
func (b *Build) runStep(ctx context.Context, s *Step) error {
	skip, err := b.unless(s)
	start := time.Now()
	if err == nil && skip {
		b.emit(Event{Kind: StepSkipped})
		if s.Kind.RunEvenIfSkipped != nil {
			err = s.Kind.RunEvenIfSkipped(b, s)
		}
	} else if err == nil {
		b.emit(Event{Kind: StepStart})
		err = b.call(s.Kind.Run, s)
		if err == nil && s.Kind.RunEvenIfSkipped != nil {
			err = b.call(s.Kind.RunEvenIfSkipped, s)
		}
	}
	if err == nil && ctx.Err() != nil {
		err = ErrInterrupted
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %v", ErrInterrupted, err)
	}
	if !skip || err != nil {
		b.emit(Event{Kind: StepEnd, Duration: time.Since(start), Err: err})
	}
	return err
}

// reportFailure emits the event of a failed or interrupted run.
func (b *Build) reportFailure(res Result) {
	b.current, b.index = nil, 0
	err := res.Err
	if err == nil {
		err = ErrInterrupted
	}
	failed := Event{Kind: RunFailed, Err: err, Step: res.Failed}
	if res.Failed != nil {
		failed.Index = res.Failed.Index + 1
	}
	b.emit(failed)
}

// tearDown runs the teardowns of the steps taken, in reverse order, each
// unless its `unless` holds now, and adds their errors to res.
func (b *Build) tearDown(taken []*Step, res *Result) {
	for i := len(taken) - 1; i >= 0; i-- {
		s := taken[i]
		b.current, b.index = s, s.Index+1
		skip, err := b.unless(s)
		if err == nil && skip {
			b.emit(Event{Kind: TeardownSkipped})
			continue
		}
		if err == nil && s.Kind.Teardown == nil {
			continue
		}
		start := time.Now()
		b.emit(Event{Kind: TeardownStart})
		if err == nil {
			err = b.explainNoSpace(b.call(s.Kind.Teardown, s))
		}
		b.emit(Event{Kind: TeardownEnd, Duration: time.Since(start), Err: err})
		if err != nil {
			res.TeardownErrors = append(res.TeardownErrors, fmt.Errorf("%s: teardown of %s: %w", s.Where(), s.Name(), err))
		}
	}
}

// syncDevices flushes every block device the build wrote to. Commands in
// the namespace run with flushes turned off (userns), so mke2fs's own
// fsync does not happen: a USB stick must not be pulled with the image
// still in the page cache. Image files are left to the kernel's writeback,
// as cp and tar leave theirs.
func (b *Build) syncDevices() error {
	seen := map[string]bool{}
	for _, t := range b.State.Tags.All() {
		if t.Image == "" || seen[t.Image] {
			continue
		}
		seen[t.Image] = true
		st, err := os.Stat(t.Image)
		if err != nil || st.Mode()&os.ModeDevice == 0 {
			continue
		}
		f, err := os.Open(t.Image)
		if err != nil {
			return fmt.Errorf("flushing %s: %w", t.Image, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("flushing %s to the device: %w", t.Image, err)
		}
	}
	return nil
}

// call runs one step function, turning a panic into an error so that a bug
// in one step still lets the teardowns clean up.
func (b *Build) call(fn func(*Build, *Step) error, s *Step) (err error) {
	if fn == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "vmdb2: internal error in step %s: %v\n", s.Name(), r)
			err = fmt.Errorf("internal error (please report it): %v", r)
		}
	}()
	return fn(b, s)
}

// unless evaluates a step's `unless` against the current state, as vmdb2
// does: a name skips when that flag is set; a list skips when all its flags
// are set (so an empty list always skips); "" never skips.
func (b *Build) unless(s *Step) (bool, error) {
	u := s.Unless
	if u == nil {
		return false, nil
	}
	switch u.Kind {
	case String:
		return u.Str != "" && b.State.Flag(u.Str), nil
	case List:
		for _, item := range u.List {
			if !b.State.Flag(item.Str) {
				return false, nil
			}
		}
		return true, nil
	}
	return false, fmt.Errorf("`unless` must be a flag name or a list of names")
}
