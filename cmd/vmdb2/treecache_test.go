package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGoSourcesDigest: the rootfs caches' key changes with the code that
// makes trees (a source file's content or name, in any subdirectory), and
// not with its tests.
func TestGoSourcesDigest(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest := func() []byte {
		t.Helper()
		d, err := goSourcesDigest(root)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	write("initramfs.go", "package bootstrap // vmlinuz-*")
	write("internal/measure/measure.go", "package measure")
	first := digest()
	write("initramfs_test.go", "package bootstrap // a test")
	write("README", "not Go")
	if !bytes.Equal(digest(), first) {
		t.Error("a test or a non-Go file changed the key")
	}
	write("initramfs.go", "package bootstrap // vmlinu[xz]-*")
	second := digest()
	if bytes.Equal(second, first) {
		t.Error("changing initramfs.go kept the key")
	}
	write("internal/measure/measure.go", "package measure // changed")
	if bytes.Equal(digest(), second) {
		t.Error("changing a subdirectory's source kept the key")
	}
	if _, err := goSourcesDigest(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing directory gave a key")
	}
}
