package main

import (
	"strings"
	"sync"
	"testing"
)

// parallelForeign lets a test that builds an image for a foreign
// architecture (and most often boots it) run beside one other such test
// (go test's -parallel is GOMAXPROCS). Such a build spends its time in
// qemu-user running one target program after another, which keeps one
// core busy: on a 2-core CI machine two of them at once take about the
// time of one. Parallel tests start only when every sequential test of
// the package is done, so they run beside each other and never beside a
// test that asserts on state shared by the host's builds (stage
// directories, loop devices, process lists); they must not assert on such
// state themselves. Their ordinary user's builds get a package cache of
// their own (userCacheHome).
//
// amd64 builds and boots stay sequential: two amd64 TCG guests of two
// vCPUs each, beside other builds, starved each other (a soft lockup of
// 164 s in TestCorpusSpecsBoot's OVMF boot). TCG guests now get one vCPU
// (internal/qemuboot), so a guest cannot wait on its own descheduled
// second vCPU.
func parallelForeign(t *testing.T) {
	t.Helper()
	parallelTests.Store(topTest(t), true)
	t.Parallel()
}

// parallelTests holds the names of the top-level tests that called
// parallelForeign.
var parallelTests sync.Map

// ownPackageCache reports whether the top-level test named top runs in
// parallel with others, and so keeps a package cache of its own.
func ownPackageCache(top string) bool {
	_, ok := parallelTests.Load(top)
	return ok
}

// topTest is the name of t's top-level test.
func topTest(t *testing.T) string {
	top, _, _ := strings.Cut(t.Name(), "/")
	return top
}
