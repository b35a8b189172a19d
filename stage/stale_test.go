package stage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestReclaimStale(t *testing.T) {
	base := t.TempDir()
	start, ok := processStart(os.Getpid())
	if !ok {
		t.Fatal("cannot read this process's start time from /proc/self/stat: reclaiming stale stages needs /proc")
	}
	mk := func(name, owner string) string {
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "fs-file"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, "meta", ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	live := mk("vmdb2-stage-1", fmt.Sprintf("%d %s\n", os.Getpid(), start))
	reused := mk("vmdb2-stage-2", fmt.Sprintf("%d 1\n", os.Getpid())) // same pid, other start: gone
	unknown := mk("vmdb2-stage-3", "")                                // no record: left alone
	garbage := mk("vmdb2-stage-4", "not a pid")
	other := mk("something-else", "1 1\n")
	removed, err := ReclaimStale(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != reused {
		t.Errorf("removed %v, want only %s", removed, reused)
	}
	for _, d := range []string{live, unknown, garbage, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed", d)
		}
	}
	if _, err := os.Stat(reused); err == nil {
		t.Errorf("%s is still there", reused)
	}
}
