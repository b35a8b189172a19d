// Command export measures --export: it builds examples/bios.vmdb (from a
// rootfs tarball, made first if missing) or takes a given image, then
// writes every export format of it and prints, per format, the wall time,
// the file's size and the space it takes on disk; for comparison, the time
// of the host's own tools for the same job (zstd -T0, xz -T0, gzip,
// bmaptool create), whose output is thrown away.
//
//	go run ./bench/export [-cache /var/tmp/bios.tar.zst] [-spec examples/bios.vmdb] [-image IMG]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/vmdb2-go/vmdb2/bench/internal/benchcache"
	"github.com/vmdb2-go/vmdb2/partition/export"
)

func main() {
	cache := flag.String("cache", "", "rootfs tarball of the spec, built first if missing (default: in the user's cache directory, named by -spec's digest)")
	spec := flag.String("spec", "examples/bios.vmdb", "spec of the image to export")
	image := flag.String("image", "", "export this image instead of building one")
	flag.Parse()
	if *cache == "" && *image == "" {
		*cache = benchcache.Default(*spec)
	}

	dir, err := os.MkdirTemp("/var/tmp", "vmdb2-bench-export-")
	check(err)
	defer os.RemoveAll(dir)
	if *image == "" {
		*image = build(dir, *spec, *cache)
	}
	size, used := sizes(*image)
	fmt.Printf("image %s: %.0f MiB, %.0f MiB of data; %d CPUs\n", *image, mib(size), mib(used), runtime.NumCPU())
	fmt.Printf("%-10s %9s %11s %11s\n", "format", "seconds", "size MiB", "on disk MiB")
	for _, f := range export.Formats() {
		target := filepath.Join(dir, "bench"+f.Suffix)
		start := time.Now()
		check(export.Write(context.Background(), *image, export.Target{Path: target, Format: &f}, export.Options{ID: func(p string) (id [16]byte) { copy(id[:], p); return id }}))
		secs := time.Since(start).Seconds()
		s, u := sizes(target)
		fmt.Printf("%-10s %9.1f %11.1f %11.1f\n", f.Suffix, secs, mib(s), mib(u))
		os.Remove(target)
	}
	fmt.Println("the host's tools, for comparison:")
	for _, c := range [][]string{
		{"zstd", "-3", "-T0", "-q", "-c", *image},
		{"xz", "-6", "-T0", "-c", *image},
		{"gzip", "-6", "-c", *image},
		{"bmaptool", "-q", "create", *image},
	} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		cmd := exec.Command(c[0], c[1:]...)
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		check(err)
		cmd.Stdout, cmd.Stderr = devnull, os.Stderr
		start := time.Now()
		check(cmd.Run())
		devnull.Close()
		fmt.Printf("%-40s %6.1f s\n", fmt.Sprint(c[:len(c)-1]), time.Since(start).Seconds())
	}
}

// build builds spec with vmdb2 into dir and returns the image's path.
func build(dir, spec, cache string) string {
	bin := filepath.Join(dir, "vmdb2")
	run("go", "build", "-o", bin, "./cmd/vmdb2")
	img := filepath.Join(dir, "image.img")
	start := time.Now()
	run(bin, spec, "--output", img, "--rootfs-tarball", cache, "--log", filepath.Join(dir, "build.log"))
	fmt.Printf("built %s in %.0f s\n", spec, time.Since(start).Seconds())
	return img
}

func run(argv ...string) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

// sizes are a file's length and the space it takes on disk.
func sizes(path string) (int64, int64) {
	var st syscall.Stat_t
	check(syscall.Stat(path, &st))
	return st.Size, st.Blocks * 512
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/export:", err)
		os.Exit(1)
	}
}
