// Command coldbuild measures a build that starts from nothing (debootstrap
// of bookworm plus linux-image-amd64, into an ext4 image) with an empty
// package cache, then the same build again with the cache warm, and prints
// both times and the bytes downloaded (the network interfaces' received
// bytes, and the packages the cache gained).
//
//	go run ./bench/coldbuild [-spec bench/cold.vmdb] [-compare]
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	spec := flag.String("spec", "bench/cold.vmdb", "spec to build")
	compare := flag.Bool("compare", false, "also run bench/vmdb2-equivalent.sh (vmdb2's commands on a loop device; root only) and print the ratio")
	flag.Parse()
	dir, err := os.MkdirTemp("", "vmdb2-coldbench-")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "vmdb2")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vmdb2")
	build.Stderr = os.Stderr
	check(build.Run())
	cache := filepath.Join(dir, "cache")
	var times []float64
	for _, label := range []string{"cold (empty package cache)", "rebuild (warm package cache)"} {
		rx0 := receivedBytes()
		start := time.Now()
		cmd := exec.Command(bin, *spec, "--output", filepath.Join(dir, "cold.img"), "--log", filepath.Join(dir, "build.log"))
		cmd.Env = append(os.Environ(), "VMDB2_CACHE_DIR="+cache)
		cmd.Stderr = os.Stderr
		check(cmd.Run())
		wall := time.Since(start)
		fmt.Printf("%s: %.1f s, %.1f MB received, package cache %.1f MB\n",
			label, wall.Seconds(), float64(receivedBytes()-rx0)/1e6, float64(dirSize(cache))/1e6)
		times = append(times, wall.Seconds())
	}
	if !*compare {
		return
	}
	// vmdb2 keeps no package cache: every build of it is a cold one.
	start := time.Now()
	eq := exec.Command("sh", "bench/vmdb2-equivalent.sh")
	eq.Stdout, eq.Stderr = os.Stdout, os.Stderr
	check(eq.Run())
	v := time.Since(start).Seconds()
	fmt.Printf("vmdb2's commands on a loop device: %.1f s; this build is %.0f%% faster cold (%.2fx), %.0f%% faster with a warm cache (%.2fx)\n",
		v, 100*(1-times[0]/v), v/times[0], 100*(1-times[1]/v), v/times[1])
}

// receivedBytes sums the bytes received by the non-loopback interfaces.
func receivedBytes() int64 {
	data, err := os.ReadFile("/proc/net/dev")
	check(err)
	var total int64
	for _, line := range strings.Split(string(data), "\n")[2:] {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			total += n
		}
	}
	return total
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldbuild:", err)
		os.Exit(1)
	}
}
