package bootstrap

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// UpdateMemo remembers, for one build, the state of each target's apt
// inputs (updateInputs) right after this build's last `apt-get update` in
// it, so that an apt run finding them unchanged does not update again: the
// update would fetch the same index files and leave the same lists. It is
// kept in memory only, so a build never skips the first update of its own.
// The zero value is ready to use; a nil *UpdateMemo never skips.
type UpdateMemo struct {
	mu   sync.Mutex
	last map[string][sha256.Size]byte
}

// updateInputs are the paths of a target whose state decides what
// `apt-get update` fetches and leaves behind: the sources, apt's
// configuration and keyrings (etc/apt), the keyrings that signed-by usually
// names, the foreign architectures dpkg knows, and the lists themselves.
var updateInputs = []string{"etc/apt", "usr/share/keyrings", "var/lib/dpkg/arch", "var/lib/apt/lists"}

// unchanged reports whether the target root's apt inputs are in state, the
// state this build's last update in root left them in.
func (m *UpdateMemo) unchanged(root string, state [sha256.Size]byte) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.last[root]
	return ok && last == state
}

// record notes state as what an update in root has just left; ok false
// (the state could not be read) forgets root, so the next run updates.
func (m *UpdateMemo) record(root string, state [sha256.Size]byte, ok bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !ok {
		delete(m.last, root)
		return
	}
	if m.last == nil {
		m.last = map[string][sha256.Size]byte{}
	}
	m.last[root] = state
}

// updateState is a digest of every file under updateInputs in the target
// root, read inside it without following links: each name, type and mode;
// the content of the configuration files and keyrings (which dpkg may
// rewrite unchanged); the size, inode, modification and change times of
// the lists and of links. Whatever else writes to the lists (a step's `rm`,
// even a rewrite with the same content) changes their change time at
// least, and so the digest.
func updateState(root string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	r, err := stage.OpenRoot(root)
	if err != nil {
		return sum, err
	}
	defer r.Close()
	h := sha256.New()
	var walk func(p string) error
	walk = func(p string) error {
		fi, err := r.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(h, "%q absent\n", p)
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return describeFile(h, r, p, fi)
		}
		fmt.Fprintf(h, "%q %v\n", p, fi.Mode())
		names, err := r.ReadDirNames(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := walk(path.Join(p, n)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range updateInputs {
		if err := walk(p); err != nil {
			return sum, err
		}
	}
	h.Sum(sum[:0])
	return sum, nil
}

// listsDir holds the package lists: large, written only by apt-get update.
const listsDir = "var/lib/apt/lists"

// maxConfigSize bounds the configuration files and keyrings read whole.
const maxConfigSize = 64 << 20

// describeFile writes what updateState records of the non-directory p.
func describeFile(h io.Writer, r *stage.Root, p string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() && !strings.HasPrefix(p, listsDir+"/") && fi.Size() <= maxConfigSize {
		data, err := r.ReadRegular(p, maxConfigSize)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%q %v %x\n", p, fi.Mode(), sha256.Sum256(data))
		return nil
	}
	st, ok := fi.Sys().(*unix.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no stat data", p)
	}
	fmt.Fprintf(h, "%q %v %d %d %d.%d %d.%d\n", p, fi.Mode(), st.Size, st.Ino,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	return nil
}

// update runs `apt-get update` in the target unless a.o.Updates says that
// this build's last update there left the apt inputs as they are now.
func (a *aptRunner) update(binds []userns.Bind) error {
	before, err := updateState(a.root)
	if err == nil && a.o.Updates.unchanged(a.root, before) {
		if a.o.Progress != nil {
			a.o.Progress("apt-get update not repeated: the target's sources and package lists are as this build's last update left them")
		}
		return nil
	}
	if err := a.apt(binds, "update"); err != nil {
		a.o.Updates.record(a.root, before, false)
		return err
	}
	after, err := updateState(a.root)
	a.o.Updates.record(a.root, after, err == nil)
	return nil
}
