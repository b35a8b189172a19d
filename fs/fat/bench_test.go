package fat

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkBuild builds a 512 MiB FAT32 filesystem holding about 100 MiB
// of files (80 of 1 MiB, 5000 of 4 KiB in 50 directories) into an image
// file; the MB/s figure is source bytes per second.
func BenchmarkBuild(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	var total int64
	for i := 0; i < 80; i++ {
		p := filepath.Join(src, "big", fmt.Sprintf("firmware-%02d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		data := content(p, 1<<20)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	small := content("small", 4096)
	for d := 0; d < 50; d++ {
		for i := 0; i < 100; i++ {
			p := filepath.Join(src, fmt.Sprintf("overlays %d", d), fmt.Sprintf("Device Tree Overlay %d.dtbo", i))
			if i == 0 {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					b.Fatal(err)
				}
			}
			if err := os.WriteFile(p, small, 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(len(small))
		}
	}
	img := filepath.Join(dir, "img")
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 512 * mib
	if err := f.Truncate(mib + size); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Build(f, mib, size, src, Options{Label: "BENCH", Time: testTime}); err != nil {
			b.Fatal(err)
		}
	}
}
