package stage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/internal/canary"
)

func openRoot(t *testing.T, dir string) *Root {
	t.Helper()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// rootOps are the operations of rootops.go on one path, for the traps.
var rootOps = map[string]func(r *Root, p string) ([]byte, error){
	"Stat":        func(r *Root, p string) ([]byte, error) { _, err := r.Stat(p); return nil, err },
	"Remove":      func(r *Root, p string) ([]byte, error) { return nil, r.Remove(p) },
	"Chmod":       func(r *Root, p string) ([]byte, error) { return nil, r.Chmod(p, 0o777) },
	"Lchown":      func(r *Root, p string) ([]byte, error) { return nil, r.Lchown(p, os.Getuid(), os.Getgid()) },
	"Chtimes":     func(r *Root, p string) ([]byte, error) { return nil, r.Chtimes(p, time.Unix(1, 0)) },
	"Mknod":       func(r *Root, p string) ([]byte, error) { return nil, r.Mknod(p, unix.S_IFIFO|0o644, 0) },
	"Mkdirs":      func(r *Root, p string) ([]byte, error) { return nil, r.Mkdirs(p+"/sub", 0o755) },
	"CreateNew":   func(r *Root, p string) ([]byte, error) { return nil, r.CreateNew(p, []byte("x"), 0o644) },
	"PutFile":     func(r *Root, p string) ([]byte, error) { return nil, r.PutFile(p, []byte("x"), 0o644) },
	"ReadRegular": func(r *Root, p string) ([]byte, error) { return r.ReadRegular(p, 1<<20) },
	"ReadDirNames": func(r *Root, p string) ([]byte, error) {
		names, err := r.ReadDirNames(p)
		return []byte(strings.Join(names, "\n")), err
	},
}

// TestRootOpsConfined plants every link trap at the path each operation
// works on: the host canary is neither changed nor read.
func TestRootOpsConfined(t *testing.T) {
	for name, op := range rootOps {
		for _, trap := range canary.Traps {
			t.Run(name+"/"+string(trap), func(t *testing.T) {
				host := canary.New(t)
				root := t.TempDir()
				host.Plant(t, root, "etc/dir/file", trap)
				b, err := op(openRoot(t, root), "/etc/dir/file")
				t.Logf("%s: %v", name, err)
				host.NotIn(t, name+"'s result", b)
				host.Check(t)
			})
		}
	}
}

// TestRootOpsFIFO: no operation blocks on a FIFO, reads from or writes
// into it.
func TestRootOpsFIFO(t *testing.T) {
	for name, op := range rootOps {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			f := canary.NewFIFO(t, filepath.Join(root, "etc/fifo"))
			var err error
			if canary.Run(func() { _, err = op(openRoot(t, root), "/etc/fifo") }, f) {
				t.Errorf("%s opened the FIFO and read or wrote it", name)
			}
			switch name {
			case "PutFile", "ReadRegular":
				if !errors.Is(err, ErrNotRegular) {
					t.Errorf("%s on a FIFO: %v, want an error wrapping ErrNotRegular", name, err)
				}
			}
		})
	}
}

// TestRootOpsDevice: a link in the tree to a device node of the tree is
// never opened as a file.
func TestRootOpsDevice(t *testing.T) {
	root := t.TempDir()
	if err := unix.Mknod(filepath.Join(root, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Skipf("cannot create a device node here: %v", err)
	}
	if err := os.Symlink("/zero", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	r := openRoot(t, root)
	for _, p := range []string{"/zero", "/link"} {
		if _, err := r.ReadRegular(p, 1<<20); !errors.Is(err, ErrNotRegular) {
			t.Errorf("ReadRegular(%s): %v, want ErrNotRegular", p, err)
		}
		if err := r.PutFile(p, []byte("x"), 0o644); !errors.Is(err, ErrNotRegular) {
			t.Errorf("PutFile(%s): %v, want ErrNotRegular", p, err)
		}
	}
}

// TestRootOpsWork checks what each operation does where nothing is wrong.
func TestRootOpsWork(t *testing.T) {
	root := t.TempDir()
	r := openRoot(t, root)
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Mkdirs("/a/b", 0o750))
	must(r.Mkdirs("a/b", 0o700)) // there already: left alone
	if fi, err := os.Stat(filepath.Join(root, "a/b")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("Mkdirs: %v %v", fi, err)
	}
	must(r.CreateNew("/a/b/f", []byte("one"), 0o640))
	if err := r.CreateNew("/a/b/f", []byte("two"), 0o640); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateNew over a file: %v, want fs.ErrExist", err)
	}
	must(r.Chmod("/a/b/f", 0o600))
	must(r.PutFile("/a/b/f", []byte("three"), 0o644))
	if fi, err := os.Stat(filepath.Join(root, "a/b/f")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("PutFile over a file changed its mode: %v %v", fi, err)
	}
	// Links inside the tree are followed for reading and stat.
	must(os.Symlink("/a/b/f", filepath.Join(root, "link")))
	if b, err := r.ReadRegular("/link", 5); err != nil || string(b) != "three" {
		t.Errorf("ReadRegular through a link: %q %v", b, err)
	}
	if _, err := r.ReadRegular("/link", 4); err == nil {
		t.Error("ReadRegular of a file larger than max: no error")
	}
	if fi, err := r.Stat("/link"); err != nil || !fi.Mode().IsRegular() || fi.Size() != 5 {
		t.Errorf("Stat through a link: %v %v", fi, err)
	}
	if err := r.Chmod("/link", 0o644); err == nil {
		t.Error("Chmod of a link: no error")
	}
	mt := time.Unix(1700000000, 0)
	must(r.Chtimes("/link", mt))
	must(r.Lchown("/link", os.Getuid(), os.Getgid()))
	if fi, err := os.Lstat(filepath.Join(root, "link")); err != nil || !fi.ModTime().Equal(mt) {
		t.Errorf("Chtimes of a link: %v %v", fi, err)
	}
	must(r.Remove("/link"))
	must(r.Remove("/a/b/f"))
	must(r.Remove("/a/b"))
	if ents, _ := os.ReadDir(filepath.Join(root, "a")); len(ents) != 0 {
		t.Errorf("left after Remove: %v", ents)
	}
	if err := r.Remove("/"); err == nil {
		t.Error("Remove of the root: no error")
	}
}

// TestRootOpsAsOrdinaryUser runs the tests above as vmdb2-test.
func TestRootOpsAsOrdinaryUser(t *testing.T) {
	asuser.Run(t, "TestRootOpsConfined", "TestRootOpsFIFO", "TestRootOpsWork")
}
