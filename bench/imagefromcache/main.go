// Command imagefromcache measures building a bootable image from a cached
// rootfs tarball (vmdb2's unpack-rootfs path): it builds examples/bios.vmdb
// once to make the cache if it does not exist, then builds
// bench/from-cache.vmdb (partition, unpack, ext4) from the cache a few times and prints the wall time and the peak RSS of vmdb2 and every
// tool it ran.
//
//	go run ./bench/imagefromcache [-cache /var/tmp/bios.tar.zst] [-runs 3] [-spec examples/bios.vmdb]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vmdb2-go/vmdb2/bench/internal/benchcache"
)

func main() {
	cache := flag.String("cache", "", "rootfs cache tarball, built first if missing (default: in the user's cache directory, named by -cache-spec's digest)")
	spec := flag.String("spec", "bench/from-cache.vmdb", "spec to rebuild from the cache")
	cacheSpec := flag.String("cache-spec", "examples/bios.vmdb", "spec that makes the cache when it is missing")
	runs := flag.Int("runs", 3, "timed rebuilds from the cache")
	flag.Parse()
	if *cache == "" {
		*cache = benchcache.Default(*cacheSpec)
	}

	dir, err := os.MkdirTemp("", "vmdb2-bench-")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "vmdb2")
	check(run(exec.Command("go", "build", "-o", bin, "./cmd/vmdb2")))

	img := filepath.Join(dir, "bench.img")
	build := func(spec string) (time.Duration, int64) {
		cmd := exec.Command(bin, spec, "--output", img, "--rootfs-tarball", *cache, "--log", filepath.Join(dir, "build.log"))
		cmd.Stderr = os.Stderr
		start := time.Now()
		check(cmd.Run())
		wall := time.Since(start)
		// wait4's usage of this one child: the largest resident set of
		// vmdb2 and of every descendant it waited for (mke2fs and the
		// others, through the namespace's init). RUSAGE_CHILDREN would also
		// count the go build above (about 175 MB).
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return wall, ru.Maxrss
	}
	if _, err := os.Stat(*cache); err != nil {
		fmt.Printf("making the cache %s (debootstrap + linux-image-amd64)…\n", *cache)
		wall, _ := build(*cacheSpec)
		fmt.Printf("cold build (debootstrap, apt, cache-rootfs, image): %.1f s\n", wall.Seconds())
	}
	st, err := os.Stat(*cache)
	check(err)
	fmt.Printf("cache: %s, %.0f MB\n", *cache, float64(st.Size())/1e6)
	for i := 1; i <= *runs; i++ {
		wall, rss := build(*spec)
		fmt.Printf("rebuild %d from the cache: %.2f s wall, peak RSS %.0f MB (vmdb2 or its largest tool)\n", i, wall.Seconds(), float64(rss)/1024)
	}
}

func run(cmd *exec.Cmd) error {
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagefromcache:", err)
		os.Exit(1)
	}
}
