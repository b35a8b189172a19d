// Command largeimage measures how a build's time and disk use grow with
// the image's size when the content stays the same: it makes a tree of
// about 1 GB (files of seeded pseudo-random bytes, so nothing compresses
// or dedups), then builds a GPT image with one ext4 partition holding it
// at each size (2 GB and 100 GB by default) and prints, per size, the wall
// time, the peak RSS of vmdb2 and its tools, and the space the image
// occupies on disk (st_blocks), beside its apparent size.
//
//	go run ./bench/largeimage [-content 1024] [-sizes 2G,100G] [-dir /var/tmp] [-bin VMDB2]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const spec = `steps:
  - mkimg: "{{ output }}"
    size: %s
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - copy-dir: /srv/content
    src: %s
  - create-dir: /etc
  - fstab: /
`

func main() {
	content := flag.Int("content", 1024, "MiB of file content in the image")
	sizes := flag.String("sizes", "2G,100G", "image sizes to build, comma-separated")
	parent := flag.String("dir", "/var/tmp", "where the content, the images and the stage go")
	binFlag := flag.String("bin", "", "vmdb2 binary to measure (default: built from this tree), e.g. an older build to compare with")
	flag.Parse()

	dir, err := os.MkdirTemp(*parent, "vmdb2-bench-large-")
	check(err)
	defer os.RemoveAll(dir)
	bin := *binFlag
	if bin == "" {
		bin = filepath.Join(dir, "vmdb2")
		build := exec.Command("go", "build", "-o", bin, "./cmd/vmdb2")
		build.Stderr = os.Stderr
		check(build.Run())
	}
	src := filepath.Join(dir, "content")
	check(makeContent(src, int64(*content)<<20))
	fmt.Printf("content: %d MiB in %s\n", *content, src)
	fmt.Printf("%-8s %9s %13s %15s\n", "image", "seconds", "peak RSS MB", "on disk MiB")
	for _, size := range strings.Split(*sizes, ",") {
		specFile := filepath.Join(dir, "large-"+size+".vmdb")
		check(os.WriteFile(specFile, []byte(fmt.Sprintf(spec, size, src)), 0o644))
		img := filepath.Join(dir, "large-"+size+".img")
		cmd := exec.Command(bin, specFile, "--output", img, "--log", filepath.Join(dir, "build.log"))
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "TMPDIR="+dir)
		cmd.Stderr = os.Stderr
		start := time.Now()
		check(cmd.Run())
		wall := time.Since(start)
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		var st syscall.Stat_t
		check(syscall.Stat(img, &st))
		fmt.Printf("%-8s %9.2f %13.0f %15.0f\n", size, wall.Seconds(), float64(rss)/1024, float64(st.Blocks*512)/(1<<20))
		os.Remove(img)
	}
}

// makeContent writes n bytes of seeded pseudo-random data under dir, in
// files of 1 to 8 MiB spread over a few directories.
func makeContent(dir string, n int64) error {
	c := rand.NewChaCha8([32]byte{'v', 'm', 'd', 'b', '2'})
	r := rand.New(c)
	buf := make([]byte, 8<<20)
	for i := 0; n > 0; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%16))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		size := min(n, int64(1+r.IntN(8))<<20)
		b := buf[:size]
		c.Read(b)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", i)), b, 0o644); err != nil {
			return err
		}
		n -= size
	}
	return nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "largeimage:", err)
		os.Exit(1)
	}
}
