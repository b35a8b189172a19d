package rootfs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// The benchmark tree: VMDB2_BENCH_TREE, or a copy of some of /usr (about
// 420 MB of binaries and many small headers) made once.
var (
	benchOnce sync.Once
	benchDir  string
	benchTree string
	benchSize int64
	benchErr  error
)

func benchSetup(b *testing.B) {
	b.Helper()
	testreq.NeedRoot(b, "(the benchmarks run in-process)")
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "rootfs-bench-")
		if benchErr != nil {
			return
		}
		benchTree = os.Getenv("VMDB2_BENCH_TREE")
		if benchTree == "" {
			benchTree = filepath.Join(benchDir, "tree")
			os.MkdirAll(filepath.Join(benchTree, "usr"), 0o755)
			for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/include"} {
				if out, err := exec.Command("cp", "-a", d, filepath.Join(benchTree, "usr")).CombinedOutput(); err != nil {
					benchErr = &exec.ExitError{Stderr: out}
					return
				}
			}
		}
		filepath.Walk(benchTree, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				benchSize += fi.Size()
			}
			return nil
		})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
}

func benchFormats() []string {
	if f := os.Getenv("VMDB2_BENCH_FORMATS"); f != "" {
		return strings.Split(f, ",")
	}
	return []string{"rootfs.tar", "rootfs.tar.gz", "rootfs.tar.zst", "rootfs.tar.xz"}
}

// BenchmarkPack reports MB/s of file data packed and the tarball's size.
func BenchmarkPack(b *testing.B) {
	benchSetup(b)
	for _, name := range benchFormats() {
		b.Run(name, func(b *testing.B) {
			tb := filepath.Join(benchDir, name)
			b.SetBytes(benchSize)
			for b.Loop() {
				if err := Pack(context.Background(), benchTree, nil, tb, PackOptions{SourceDateEpoch: time.Unix(1700000000, 0)}); err != nil {
					b.Fatal(err)
				}
			}
			st, _ := os.Stat(tb)
			b.ReportMetric(float64(st.Size())/1e6, "MB-tarball")
			b.ReportMetric(float64(benchSize)/1e6, "MB-data")
		})
	}
}

// BenchmarkUnpack reports MB/s of file data unpacked from each format.
func BenchmarkUnpack(b *testing.B) {
	benchSetup(b)
	for _, name := range benchFormats() {
		b.Run(name, func(b *testing.B) {
			tb := filepath.Join(benchDir, name)
			if _, err := os.Stat(tb); err != nil {
				if err := Pack(context.Background(), benchTree, nil, tb, PackOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(benchSize)
			i := 0
			for b.Loop() {
				b.StopTimer()
				dst := filepath.Join(benchDir, "out")
				os.RemoveAll(dst)
				os.Mkdir(dst, 0o755)
				exec.Command("sync").Run()
				b.StartTimer()
				if err := Unpack(context.Background(), tb, dst, UnpackOptions{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.StopTimer()
			os.RemoveAll(filepath.Join(benchDir, "out"))
		})
	}
}
