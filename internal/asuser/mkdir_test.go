package asuser

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestMkdirOwned checks that every directory MkdirOwned creates, not only
// the last, belongs to the given owner, and that existing ones are left
// alone.
func TestMkdirOwned(t *testing.T) {
	testreq.NeedRoot(t, "to give directories away")
	base := t.TempDir()
	dir := filepath.Join(base, "home", ".cache", "leaf")
	if err := MkdirOwned(dir, 4321, 4322); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "home"), filepath.Join(base, "home", ".cache"), dir} {
		st := owner(t, p)
		if st.Uid != 4321 || st.Gid != 4322 {
			t.Errorf("%s: owned by %d:%d, want 4321:4322", p, st.Uid, st.Gid)
		}
	}
	if st := owner(t, base); st.Uid != 0 {
		t.Errorf("%s existed and was given to %d", base, st.Uid)
	}
	f := filepath.Join(base, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirOwned(filepath.Join(f, "sub"), 1, 1); err == nil {
		t.Error("MkdirOwned under a file succeeded")
	}
}

func owner(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
