// Package canary gives tests host files that code working on a target tree
// must neither change nor read, and the traps that would lead it there: a
// canary directory outside the tree (a file of unique content and a
// subdirectory), symbolic links planted in the tree that point at it
// (absolute, relative ".." chains, symlinked parent directories, a link as
// the last component) and FIFOs that would block a careless open.
//
// It is used by tests only.
package canary

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Host is a canary directory on the host with the state it had when
// planted.
type Host struct {
	Dir    string // the canary directory
	File   string // a regular file in Dir
	Sub    string // a directory in Dir, holding a file
	Secret []byte // File's content: it must appear in nothing written
	state  map[string]string
}

// New makes a canary directory in a fresh temporary directory. extra are
// more files to put in it (paths relative to Dir, holding the secret), so
// that a trap leads the code under test to a file it looks for: with
// extra "bin/python3", a tree's usr -> Dir offers usr/bin/python3.
func New(t testing.TB, extra ...string) *Host {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "host-canary")
	var b [16]byte
	rand.Read(b[:])
	h := &Host{Dir: dir, File: filepath.Join(dir, "secret"), Sub: filepath.Join(dir, "sub"),
		Secret: []byte("canary-" + hex.EncodeToString(b[:]) + "\n")}
	must(t, os.MkdirAll(h.Sub, 0o755))
	must(t, os.WriteFile(h.File, h.Secret, 0o644))
	must(t, os.WriteFile(filepath.Join(h.Sub, "keep"), h.Secret, 0o600))
	for _, p := range extra {
		full := filepath.Join(dir, p)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, h.Secret, 0o644))
	}
	h.state = h.snapshot(t)
	return h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every entry of the canary directory: type, mode,
// owner, size, mtime, ctime and content.
func (h *Host) snapshot(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(h.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		s := strings.Join([]string{
			strconv.FormatUint(uint64(st.Mode), 8), itoa(int64(st.Uid)), itoa(int64(st.Gid)), itoa(st.Size),
			itoa(st.Mtim.Nano()), itoa(st.Ctim.Nano())}, " ")
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += " " + string(b)
		}
		m[p] = s
		return nil
	})
	must(t, err)
	return m
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Record takes the canary directory's state as it is now as the one to
// check against: for a test that changed it on purpose (given it to
// another user, say) after New.
func (h *Host) Record(t testing.TB) {
	t.Helper()
	h.state = h.snapshot(t)
}

// Check fails the test if anything in the canary directory changed: an
// entry added or removed, a content, mode, owner, mtime or ctime.
func (h *Host) Check(t testing.TB) {
	t.Helper()
	now := h.snapshot(t)
	for p, s := range h.state {
		if now[p] != s {
			t.Errorf("host canary %s changed:\n was %q\n now %q", p, s, now[p])
		}
	}
	for p := range now {
		if _, ok := h.state[p]; !ok {
			t.Errorf("host canary directory: %s appeared", p)
		}
	}
}

// NotIn fails the test if b holds the canary's secret (a host file was
// read into it).
func (h *Host) NotIn(t testing.TB, what string, b []byte) {
	t.Helper()
	if bytes.Contains(b, bytes.TrimSpace(h.Secret)) {
		t.Errorf("%s holds the host canary's content: a host file was read", what)
	}
}

// NotInTree fails the test if a regular file below dir (links not
// followed) holds the canary's secret.
func (h *Host) NotInTree(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			h.NotIn(t, p, b)
		}
		return nil
	})
}

// Trap is a way of planting a link in a tree that leads to the canary
// when the tree's path is resolved by the host.
type Trap string

// The traps Plant knows.
const (
	AbsFile  Trap = "final-abs"      // the path itself -> /…/host-canary/secret
	RelFile  Trap = "final-rel"      // the path itself -> ../../…/host-canary/secret
	AbsDir   Trap = "parent-abs"     // the path's parent -> /…/host-canary
	RelDir   Trap = "parent-rel"     // the path's parent -> ../../…/host-canary
	TopDir   Trap = "top-abs"        // the path's first component -> /…/host-canary
	DotDot   Trap = "parent-dotdot"  // the path's parent -> a chain of links to ".."
	Dangling Trap = "final-dangling" // the path itself -> /…/host-canary/new
)

// Traps are all the link traps.
var Traps = []Trap{AbsFile, RelFile, AbsDir, RelDir, TopDir, DotDot, Dangling}

// up climbs far enough out of any test tree.
var up = strings.Repeat("../", 40)

// Plant puts trap at the path p (relative to root, "/" separated) of the
// tree root, creating the directories on the way. DotDot makes p's parent
// a link through a chain of links to ".." (dotdot3 -> dotdot2/.., dotdot2
// -> dotdot1/.., dotdot1 -> ..) and on up to the canary.
func (h *Host) Plant(t testing.TB, root, p string, trap Trap) {
	t.Helper()
	p = strings.Trim(p, "/")
	full := filepath.Join(root, p)
	link := func(at, target string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(at), 0o755))
		os.RemoveAll(at)
		must(t, os.Symlink(target, at))
	}
	switch trap {
	case AbsFile:
		link(full, h.File)
	case RelFile:
		link(full, up+strings.TrimPrefix(h.File, "/"))
	case Dangling:
		link(full, filepath.Join(h.Dir, "new"))
	case AbsDir:
		link(filepath.Dir(full), h.Dir)
	case RelDir:
		link(filepath.Dir(full), up+strings.TrimPrefix(h.Dir, "/"))
	case TopDir:
		top, _, _ := strings.Cut(p, "/")
		link(filepath.Join(root, top), h.Dir)
	case DotDot:
		// Next to the parent: dotdot1 -> .., dotdot2 -> dotdot1/..,
		// dotdot3 -> dotdot2/.., each a step up when the host resolves it.
		at := filepath.Dir(full)
		prev := ".."
		for i := 1; i <= 3; i++ {
			name := "dotdot" + itoa(int64(i))
			link(filepath.Join(filepath.Dir(at), name), prev)
			prev = name + "/.."
		}
		link(at, prev+"/"+up+strings.TrimPrefix(h.Dir, "/"))
	default:
		t.Fatalf("unknown trap %q", trap)
	}
}

// FIFO is a FIFO planted in a tree. The test holds it open for reading and
// writing, so that opening it never blocks, and a marker waits in it: a
// read takes the marker, a write adds to it.
type FIFO struct {
	Path string
	fd   int
}

const marker = "fifo-marker"

// NewFIFO makes a FIFO at p (creating the directories on the way); it is
// closed at the end of the test.
func NewFIFO(t testing.TB, p string) *FIFO {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	os.RemoveAll(p)
	must(t, unix.Mkfifo(p, 0o644))
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	must(t, err)
	f := &FIFO{Path: p, fd: fd}
	t.Cleanup(f.close)
	if _, err := unix.Write(fd, []byte(marker)); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *FIFO) close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
}

// Touched says whether something read from or wrote into the FIFO.
func (f *FIFO) Touched() bool {
	if f.fd < 0 {
		return true
	}
	n, err := unix.IoctlGetInt(f.fd, unix.TIOCINQ)
	return err != nil || n != len(marker)
}

// Run runs fn and reports whether it touched any of fifos. A fn that reads
// one and then waits for more, or fills one, is let go by closing the
// test's ends (it then sees the end of the file, or EPIPE).
func Run(fn func(), fifos ...*FIFO) (touched bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	for {
		select {
		case <-done:
			for _, f := range fifos {
				touched = touched || f.Touched()
			}
			return touched
		case <-time.After(5 * time.Millisecond):
		}
		for _, f := range fifos {
			if f.Touched() {
				for _, g := range fifos {
					g.close()
				}
				<-done
				return true
			}
		}
	}
}
