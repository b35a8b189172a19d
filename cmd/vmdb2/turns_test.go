package main

import (
	"flag"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Turns. go test's -parallel would let two heavy tests run at once, but it
// starts the waiting ones in an order of its own and counts a test that
// waits for another's rootfs cache as running. So TestMain raises
// -parallel out of the way and the heavy tests take turns here instead:
// as many turns as -parallel asked for, handed to the longest waiting test
// first (turnPriority), and given back while a test waits for a cache
// another test is building (pauseTurn). Longest first keeps the run's end
// from being one long test alone on one core.

// turnQueue hands out a fixed number of turns.
type turnQueue struct {
	mu      sync.Mutex
	free    int
	seq     int
	waiting []*turnWaiter
	held    map[string]*heldTurn // by test name
}

type turnWaiter struct {
	priority, seq int
	ready         chan struct{}
}

// heldTurn is one test's turn; held says whether it has it now.
type heldTurn struct {
	name     string
	priority int
	held     bool
}

// turns is set up by setUpTurns (TestMain).
var turns = newTurnQueue(1)

func newTurnQueue(n int) *turnQueue {
	return &turnQueue{free: max(n, 1), held: map[string]*heldTurn{}}
}

// setUpTurns makes -parallel's value the number of turns and raises
// -parallel so that it never holds back a test that has no turn yet.
// It parses the flags.
func setUpTurns() {
	flag.Parse()
	n := 1
	if f := flag.Lookup("test.parallel"); f != nil {
		n, _ = strconv.Atoi(f.Value.String())
		_ = f.Value.Set("1000")
	}
	turns = newTurnQueue(n)
}

// acquire waits for a turn; of the waiting tests the one with the highest
// priority gets the next, the first to ask among equals.
func (q *turnQueue) acquire(priority int) {
	q.mu.Lock()
	if q.free > 0 && len(q.waiting) == 0 {
		q.free--
		q.mu.Unlock()
		return
	}
	q.seq++
	w := &turnWaiter{priority: priority, seq: q.seq, ready: make(chan struct{})}
	i := 0
	for i < len(q.waiting) && (q.waiting[i].priority > priority ||
		q.waiting[i].priority == priority && q.waiting[i].seq < w.seq) {
		i++
	}
	q.waiting = append(q.waiting, nil)
	copy(q.waiting[i+1:], q.waiting[i:])
	q.waiting[i] = w
	q.mu.Unlock()
	<-w.ready
}

// release gives a turn back, to the first waiting test if there is one.
func (q *turnQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.free++
		return
	}
	w := q.waiting[0]
	q.waiting = q.waiting[1:]
	close(w.ready)
}

// takeTurn waits for t's turn and returns what gives it back (also called
// when t ends; calling it again does nothing).
func takeTurn(t *testing.T) (release func()) {
	t.Helper()
	h := &heldTurn{name: t.Name(), priority: turnPriority(t.Name())}
	turns.acquire(h.priority)
	turns.mu.Lock()
	h.held = true
	turns.held[h.name] = h
	turns.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			turns.mu.Lock()
			delete(turns.held, h.name)
			give := h.held
			h.held = false
			turns.mu.Unlock()
			if give {
				turns.release()
			}
		})
	}
	t.Cleanup(release)
	return release
}

// pauseTurn gives back the turn t runs in (its own, or that of the test
// it runs inside) while it waits, and returns what takes it again.
func pauseTurn(t *testing.T) (resume func()) {
	turns.mu.Lock()
	h := turns.heldBy(t.Name())
	if h == nil || !h.held {
		turns.mu.Unlock()
		return func() {}
	}
	h.held = false
	turns.mu.Unlock()
	turns.release()
	return func() {
		turns.acquire(h.priority)
		turns.mu.Lock()
		h.held = true
		turns.mu.Unlock()
	}
}

// heldBy is the turn the test named name runs in: its own, or else that of
// the nearest test it runs inside; nil if none has one. q.mu is held.
func (q *turnQueue) heldBy(name string) *heldTurn {
	for {
		if h := q.held[name]; h != nil {
			return h
		}
		i := strings.LastIndex(name, "/")
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
}

// turnPriority orders the waiting tests: roughly the seconds each takes in
// a cold run on the 2-core CI machine (a test with subtests that run in
// parallel: what runs in its own turn), so the longest start first. Of the
// tests that share the separate-/boot tree, TestSeparateBootBoots comes
// first and builds it; the others' figures are what they take from its
// cache. A test not listed comes after them.
func turnPriority(name string) int {
	if p, ok := turnSeconds[name]; ok {
		return p
	}
	return 0
}

var turnSeconds = map[string]int{
	"TestIEEE1275Boot":                                  580,
	"TestARM64Boot":                                     555,
	"TestSeparateBootBoots":                             520,
	"TestColdBuildsReproducible":                        510,
	"TestSecureBoot":                                    390,
	"TestCorpusSpecsBoot/01-vmdb2-amd64-bios":           345,
	"TestExamplesBoot":                                  315,
	"TestCorpusSpecsBoot/07-vmdb2-smoke-amd64-files":    300,
	"TestLUKSBoot/luks-lvm":                             260,
	"TestCorpusSpecsBoot/02-vmdb2-amd64-uefi-virtualfs": 205,
	"TestLUKSBoot":                                      200,
	"TestExamplesBoot/hybrid":                           200,
	"TestRootlessPodman":                                165,
	"TestArmhfBootstrap/qemu-debootstrap_as_vmdb2-test": 160,
	"TestConcurrentColdBuilds":                          160,
	"TestAnsibleStep":                                   155,
	"TestExamplesBoot/uefi":                             130,
	"TestArmhfBootstrap/debootstrap_as_root":            120,
	"TestDebootstrapExcludeAndCACerts":                  120,
	"TestPlainLVMBootsUEFI":                             100,
	"TestDebootstrapImage":                              85,
	"TestRootfulPodmanDefaultCaps":                      50,
	"TestBootCheckUEFIFirmware":                         30,
	"TestRootlessPodmanNoUserns":                        30,
	"TestRootlessPodmanOrdinaryUser":                    30,
}

// TestTurnsLongestFirst: with every turn taken, the waiting tests get the
// turns given back in order of priority, equals in the order they asked.
func TestTurnsLongestFirst(t *testing.T) {
	q := newTurnQueue(1)
	q.acquire(0)
	order := make(chan int, 4)
	for i, p := range []int{10, 30, 20, 30} {
		go func() {
			q.acquire(p)
			order <- p*10 + i
			q.release()
		}()
		waitForWaiters(t, q, i+1)
	}
	q.release()
	var got []int
	for range 4 {
		got = append(got, <-order)
	}
	if want := []int{301, 303, 202, 100}; !slices.Equal(got, want) {
		t.Errorf("turns went to %v (priority*10+arrival), want %v", got, want)
	}
}

// waitForWaiters waits until n tests wait for a turn of q.
func waitForWaiters(t *testing.T, q *turnQueue, n int) {
	t.Helper()
	for range 1000 {
		q.mu.Lock()
		k := len(q.waiting)
		q.mu.Unlock()
		if k == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d tests never waited for a turn", n)
}

// TestPausedTurnGoesToAnother: a subtest running in its parent's turn
// that pauses it (as lockTreeCache does while another test builds a
// cache) lets a waiting test run, and gets the turn back afterwards; at
// the end every turn is free again.
func TestPausedTurnGoesToAnother(t *testing.T) {
	saved := turns
	turns = newTurnQueue(1)
	defer func() { turns = saved }()
	t.Run("holder", func(t *testing.T) {
		takeTurn(t)
		ran := make(chan struct{})
		go func() {
			turns.acquire(0)
			close(ran)
			turns.release()
		}()
		waitForWaiters(t, turns, 1)
		t.Run("inline", func(t *testing.T) {
			resume := pauseTurn(t)
			select {
			case <-ran:
			case <-time.After(10 * time.Second):
				t.Fatal("the waiting test did not get the paused turn")
			}
			resume()
		})
	})
	turns.mu.Lock()
	defer turns.mu.Unlock()
	if turns.free != 1 || len(turns.waiting) != 0 || len(turns.held) != 0 {
		t.Errorf("after the tests: %d free, %d waiting, %d held", turns.free, len(turns.waiting), len(turns.held))
	}
}
