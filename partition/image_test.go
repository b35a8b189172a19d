package partition

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// writeOld makes an existing output of 1 MiB of 0xAA with mode perm.
func writeOld(t *testing.T, path string, perm os.FileMode) *syscall.Stat_t {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAA}, 1<<20), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return statT(t, path)
}

func statT(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// readsZeros checks that path has size bytes and its first MiB is zeros.
func readsZeros(t *testing.T, path string, size int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != size {
		t.Fatalf("%s has %d bytes, want %d", path, len(b), size)
	}
	if !bytes.Equal(b[:1<<20], make([]byte, 1<<20)) {
		t.Errorf("%s still holds the old image's bytes", path)
	}
}

// TestCreateImageReplacesOwnOutput: a previous image of this user's, with
// one link, is replaced by a new file with its permissions (the old one is
// freed in the background); nothing else is left in the directory.
func TestCreateImageReplacesOwnOutput(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "out.img")
	writeOld(t, img, 0o640)
	// Holding the old file open keeps its inode: the new file cannot
	// reuse its number, and the held one shows whether it was unlinked
	// whole or truncated.
	held, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := CreateImage(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	var was syscall.Stat_t
	if err := syscall.Fstat(int(held.Fd()), &was); err != nil {
		t.Fatal(err)
	}
	now := statT(t, img)
	if now.Ino == was.Ino || was.Nlink != 0 {
		t.Error("the old image was truncated in place, not replaced")
	}
	if was.Size != 1<<20 {
		t.Errorf("the old image was changed to %d bytes before its unlink", was.Size)
	}
	if perm := os.FileMode(now.Mode).Perm(); perm != 0o640 {
		t.Errorf("new image's mode %v, want the old one's 0640", perm)
	}
	if now.Blocks != 0 {
		t.Errorf("new image allocates %d blocks, want a sparse file", now.Blocks)
	}
	readsZeros(t, img, 8<<20)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want only out.img", entries, err)
	}
}

// TestCreateImageTruncatesShared: an output with a second hard link is
// emptied in place, as qemu-img does, so both names see the new image;
// a symbolic link is followed and its target emptied, the link kept.
func TestCreateImageTruncatesShared(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "out.img")
	old := writeOld(t, img, 0o644)
	other := filepath.Join(dir, "other-name.img")
	if err := os.Link(img, other); err != nil {
		t.Fatal(err)
	}
	if err := CreateImage(img, 4<<20); err != nil {
		t.Fatal(err)
	}
	if statT(t, img).Ino != old.Ino {
		t.Error("an output with two links was replaced, not emptied in place")
	}
	readsZeros(t, other, 4<<20)

	target := filepath.Join(dir, "target.img")
	writeOld(t, target, 0o644)
	link := filepath.Join(dir, "link.img")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := CreateImage(link, 2<<20); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symbolic link output was replaced: %v %v", fi, err)
	}
	readsZeros(t, target, 2<<20)
}

// TestCreateImageFreesOldBlocks: the replaced image's space comes back
// (its blocks are freed once its last descriptor closes).
func TestCreateImageFreesOldBlocks(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "out.img")
	writeOld(t, img, 0o644)
	if err := CreateImage(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	// /proc/self/fd must not keep an unlinked out.img for long.
	for range 200 {
		if !holdsDeleted(t, img) {
			return
		}
		syscall.Nanosleep(&syscall.Timespec{Nsec: 10e6}, nil)
	}
	t.Error("the replaced image is still open 2 s later")
}

func holdsDeleted(t *testing.T, path string) bool {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && l == path+" (deleted)" {
			return true
		}
	}
	return false
}
