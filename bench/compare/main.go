// Command compare measures this program against vmdb2 0.26's own command
// sequence in one run, on the same machine, back to back, and prints for
// each kind of build the wall time and peak RSS of both and their ratio:
//
//   - cached: bench/from-cache.vmdb from a rootfs tarball, against
//     bench/vmdb2-from-cache.sh (vmdb2's unpack-rootfs, fstab, zerofree on
//     a loop device);
//   - cold: bench/cold.vmdb (debootstrap + linux-image-amd64) with an empty
//     package cache, against bench/vmdb2-equivalent.sh;
//   - warm package cache: the same build again with the cache the cold one
//     filled, against the same script (vmdb2 keeps no package cache, so
//     every build of it downloads everything).
//
// Peak RSS is the largest resident set of the command or any descendant it
// waited for (wait4). The vmdb2 side needs root and loop devices. Under the
// table, each of this program's builds is broken down by its --progress=json
// events: the time of each step and teardown, and of its longest commands.
//
//	sudo go run ./bench/compare [-cache ROOTFS.tar.zst] [-runs 3] [-cached-only]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/vmdb2-go/vmdb2/bench/internal/benchcache"
)

// measurement is one build's wall time and peak RSS, and for this
// program's builds where the time went.
type measurement struct {
	secs  float64
	rssMB float64
	where string
}

// row is one kind of build, measured on both sides.
type row struct {
	build       string
	this, vmdb2 measurement
}

func main() {
	cache := flag.String("cache", benchcache.Default("examples/bios.vmdb"), "rootfs tarball for the cached builds (built from examples/bios.vmdb if missing)")
	runs := flag.Int("runs", 3, "cached builds of each side; the median is shown")
	cachedOnly := flag.Bool("cached-only", false, "measure only the cached builds (no debootstrap)")
	flag.Parse()
	dir, err := os.MkdirTemp("/var/tmp", "vmdb2-bench-compare-")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "vmdb2")
	_, err = measure(exec.Command("go", "build", "-o", bin, "./cmd/vmdb2"), os.Stderr)
	check(err)
	ours := func(spec string, env ...string) measurement {
		cmd := exec.Command(bin, spec, "--output", filepath.Join(dir, "out.img"), "--rootfs-tarball", *cache,
			"--log", filepath.Join(dir, "build.log"), "--progress=json")
		cmd.Env = append(os.Environ(), env...)
		var events bytes.Buffer
		m, err := measure(cmd, &events)
		check(err)
		m.where = breakdown(events.Bytes())
		return m
	}
	if _, err := os.Stat(*cache); err != nil {
		fmt.Printf("making the rootfs cache %s from examples/bios.vmdb…\n", *cache)
		ours("examples/bios.vmdb")
	}
	var rows []row
	var a, b []measurement
	for range *runs {
		a = append(a, ours("bench/from-cache.vmdb"))
		m, err := measure(exec.Command("sh", "bench/vmdb2-from-cache.sh", *cache), os.Stderr)
		check(err)
		b = append(b, m)
	}
	rows = append(rows, row{"cached", median(a), median(b)})
	if !*cachedOnly {
		pkgs := "VMDB2_CACHE_DIR=" + filepath.Join(dir, "packages")
		cold := ours("bench/cold.vmdb", pkgs)
		warm := ours("bench/cold.vmdb", pkgs)
		v, err := measure(exec.Command("sh", "bench/vmdb2-equivalent.sh"), os.Stderr)
		check(err)
		rows = append(rows, row{"cold", cold, v}, row{"warm package cache", warm, v})
	}
	fmt.Printf("\n%-20s %10s %9s %12s %9s %7s\n", "build", "this (s)", "RSS MB", "vmdb2 (s)", "RSS MB", "ratio")
	for _, r := range rows {
		x, y := r.this, r.vmdb2
		fmt.Printf("%-20s %10.1f %9.0f %12.1f %9.0f %7.2f\n", r.build, x.secs, x.rssMB, y.secs, y.rssMB, x.secs/y.secs)
	}
	fmt.Println("\nwhere this program's time went (seconds):")
	for _, r := range rows {
		fmt.Printf("%-20s %s\n", r.build, r.this.where)
	}
}

// measure runs cmd (its standard output to stdout, its errors to stderr)
// and returns its wall time and peak RSS.
func measure(cmd *exec.Cmd, stdout io.Writer) (measurement, error) {
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return measurement{}, fmt.Errorf("%v: %w", cmd.Args, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return measurement{secs: time.Since(start).Seconds(), rssMB: float64(ru.Maxrss) / 1024}, nil
}

// median returns the run with the median wall time.
func median(ms []measurement) measurement {
	sort.Slice(ms, func(i, j int) bool { return ms[i].secs < ms[j].secs })
	return ms[len(ms)/2]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}
