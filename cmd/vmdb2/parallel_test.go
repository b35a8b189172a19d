package main

import (
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The tests that build or boot whole images run in parallel, as many at a
// time as go test's -parallel says (GOMAXPROCS by default: 2 on the CI
// machine), each in a turn (turns_test.go: longest first, and a test that
// waits for another's rootfs cache gives its turn back). One such test
// keeps about one core busy: a build's dpkg and maintainer scripts run one
// after another, a TCG guest has one vCPU (internal/qemuboot), a foreign
// build spends its time in qemu-user running one target program at a
// time. Two at once use the machine's second core.
//
// Parallel tests start only when every sequential test of the package is
// done, so they never run beside a test that asserts on state shared by
// every build of the host (its mount table, its loop devices, all of its
// processes: TestInterruptLeavesNothing, the treemounts tests), and must
// not assert on such state themselves; they also cannot use t.Setenv.
// What they share with each other is made for concurrent builds: the
// package caches and base-tree caches take the program's own locks, and
// a rootfs cache of the tests is built by one test at a time
// (lockTreeCache).
//
// Two amd64 TCG guests of two vCPUs each, beside other builds, once
// starved each other (a soft lockup of 164 s in TestCorpusSpecsBoot's OVMF
// boot); with one vCPU a guest cannot wait on its own descheduled second
// vCPU.

// parallelBuild lets a test that builds or boots amd64 images run beside
// other such tests (see above) and gives it a turn (takeTurn). A test whose
// subtests run in parallel defers the release to the end of its body,
// `defer parallelBuild(t)()`, so that its turn goes to them; for the
// others the turn ends with the test.
func parallelBuild(t *testing.T) (release func()) {
	t.Helper()
	t.Parallel()
	return takeTurn(t)
}

// parallelParent is for a test whose body only starts subtests that run in
// parallel, each taking its own turn (parallelSub): it runs in parallel
// and takes no turn itself. foreign is parallelForeign's.
func parallelParent(t *testing.T, foreign bool) {
	t.Helper()
	if foreign {
		parallelTests.Store(topTest(t), true)
	}
	t.Parallel()
}

// parallelSub is parallelBuild for a subtest.
func parallelSub(t *testing.T) {
	t.Helper()
	t.Parallel()
	takeTurn(t)
}

// parallelForeign is parallelBuild for a test that builds an image for a
// foreign architecture: its ordinary user's builds also get a package
// cache of their own (userCacheHome), as a foreign debootstrap holds its
// package cache's lock for its whole emulated run.
func parallelForeign(t *testing.T) (release func()) {
	t.Helper()
	parallelTests.Store(topTest(t), true)
	return parallelBuild(t)
}

// parallelTests holds the names of the top-level tests that called
// parallelForeign.
var parallelTests sync.Map

// ownPackageCache reports whether the top-level test named top builds for
// a foreign architecture in parallel with others, and so keeps a package
// cache of its own.
func ownPackageCache(top string) bool {
	_, ok := parallelTests.Load(top)
	return ok
}

// topTest is the name of t's top-level test.
func topTest(t *testing.T) string {
	top, _, _ := strings.Cut(t.Name(), "/")
	return top
}

// lockTreeCache holds an exclusive lock on the rootfs cache tarball (a
// file beside it, TARBALL.lock) until unlock is called, so that of two
// parallel tests building a spec whose cache is missing, one builds it
// and the other, waiting, then unpacks it instead of building it again.
// The program writes a cache atomically, so the lock only saves the work.
func lockTreeCache(t *testing.T, tarball string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(tarball+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("locking the rootfs cache: %v", err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		// Another test builds the cache: wait for it without holding a
		// turn, so that a third test can use the core meanwhile.
		pause := pauseTurn(t)
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		pause()
	}
	if err != nil {
		f.Close()
		t.Fatalf("locking the rootfs cache %s: %v", tarball, err)
	}
	return func() { f.Close() }
}
