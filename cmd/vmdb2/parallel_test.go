package main

import "testing"

// parallelForeign lets a test that builds an image for a foreign
// architecture (and most often boots it) run beside one other such test
// (go test's -parallel is GOMAXPROCS). Such a build spends its time in
// qemu-user running one target program after another, which keeps one
// core busy: on a 2-core CI machine two of them at once take about the
// time of one. Parallel tests start only when every sequential test of
// the package is done, so they run beside each other and never beside a
// test that asserts on state shared by the host's builds (stage
// directories, loop devices, process lists); they must not assert on such
// state themselves.
//
// amd64 builds and boots stay sequential: two amd64 TCG guests of two
// vCPUs each, beside other builds, starved each other (a soft lockup of
// 164 s in TestCorpusSpecsBoot's OVMF boot). TCG guests now get one vCPU
// (internal/qemuboot), so a guest cannot wait on its own descheduled
// second vCPU.
func parallelForeign(t *testing.T) {
	t.Helper()
	t.Parallel()
}
