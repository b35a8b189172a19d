// Package fstest holds helpers for the filesystem builders' tests: tool
// checks, sentinel-filled images and sample trees.
package fstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// RequireTools skips the test in -short mode and fails it, with the fix,
// when a tool is missing in the full suite.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs external tools; skipped in -short mode")
	}
	testreq.NeedTools(t, tools...)
}

// Sentinel is the byte pattern images are filled with before a build.
func Sentinel(i int64) byte { return byte(0xA5 ^ i*7) }

// SentinelImage creates an image of n bytes filled with the sentinel pattern.
func SentinelImage(t testing.TB, path string, n int64) {
	t.Helper()
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = Sentinel(int64(i))
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// CheckOutside fails the test if any byte outside [off, off+size) of the
// image differs from the sentinel pattern.
func CheckOutside(t testing.TB, path string, off, size int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(len(b)) {
		if i >= off && i < off+size {
			continue
		}
		if b[i] != Sentinel(i) {
			t.Fatalf("byte %d outside the region [%d, %d) was changed", i, off, off+size)
		}
	}
}

// Extract copies [off, off+size) of image into a new file and returns its
// path.
func Extract(t testing.TB, image string, off, size int64) string {
	t.Helper()
	in, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := filepath.Join(t.TempDir(), "region.img")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, io.NewSectionReader(in, off, size)); err != nil {
		t.Fatal(err)
	}
	return p
}

// RegionSum returns the hex sha256 of [off, off+size) of image.
func RegionSum(t testing.TB, image string, off, size int64) string {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Output runs a command and returns its stdout, failing the test (with
// stderr) when it fails.
func Output(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// Old is an mtime older than any SOURCE_DATE_EPOCH the tests use.
var Old = time.Unix(1000000000, 0)

// Tree writes a sample tree into dir: regular files, nested directories,
// symlinks (short, long, dangling), a hard link, a fifo, a user.* xattr, a
// setuid file and a sparse file; as root also a file owned by 1234:5678 and
// the character device 1:3.
func Tree(t testing.TB, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc/deep/er"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/hello"), []byte("hello, world\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/deep/er/file"), bytes.Repeat([]byte("0123456789abcdef"), 5000), 0o600))
	must(os.Symlink("hello", filepath.Join(dir, "etc/link")))
	long := "../" + string(bytes.Repeat([]byte("x"), 100))
	must(os.Symlink(long, filepath.Join(dir, "etc/longlink")))
	must(os.Link(filepath.Join(dir, "etc/hello"), filepath.Join(dir, "etc/hardlink")))
	must(syscall.Mkfifo(filepath.Join(dir, "etc/fifo"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/xattr"), []byte("x"), 0o644))
	must(syscall.Setxattr(filepath.Join(dir, "etc/xattr"), "user.comment", []byte("kept"), 0))
	must(os.WriteFile(filepath.Join(dir, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(dir, "suid"), os.ModeSetuid|0o755))
	f, err := os.Create(filepath.Join(dir, "sparse"))
	must(err)
	must(f.Truncate(64 << 20))
	_, err = f.WriteAt([]byte("middle"), 32<<20)
	must(err)
	must(f.Close())
	must(os.Chtimes(filepath.Join(dir, "etc/hello"), Old, Old))
	if os.Geteuid() == 0 {
		must(os.WriteFile(filepath.Join(dir, "owned"), []byte("mine"), 0o640))
		must(os.Lchown(filepath.Join(dir, "owned"), 1234, 5678))
		must(os.Mkdir(filepath.Join(dir, "dev"), 0o755))
		must(syscall.Mknod(filepath.Join(dir, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3))
	}
}
