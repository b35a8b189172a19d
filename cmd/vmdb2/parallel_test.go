package main

import "testing"

// parallelBoot lets a test that builds an image from the network (and most
// often boots it) run beside one other such test (go test's -parallel is GOMAXPROCS). A TCG boot keeps one
// core busy, and this package runs far longer than all the others, so
// without it the second core of a 2-core CI machine idles for most of the
// run. Only tests that touch no state shared by the host's builds (stage
// directories, loop devices, process lists) may call it: those that assert
// on such state stay sequential and so run before every parallel test.
//
// It is off: two TCG guests of two vCPUs each on a 2-core machine starved
// each other (a soft lockup of 164 s in TestCorpusSpecsBoot's OVMF boot),
// so the tests run one at a time again until the guests are given one vCPU
// each or a longer timeout under load.
func parallelBoot(t *testing.T) {
	t.Helper()
}
