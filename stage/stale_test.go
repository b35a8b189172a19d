package stage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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

// staleStage makes a stage under base whose owner record names a process
// that is gone (pid 1 with an impossible start time), as a SIGKILLed
// build leaves it.
func staleStage(t *testing.T, base string) string {
	t.Helper()
	dir, err := os.MkdirTemp(base, stagePrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta", ownerFile), []byte("1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReclaimKeepsLockedStage: a stage whose record names a process this
// host does not know (its builder runs in another PID namespace) but
// whose lock is held is a live build's, and must be left alone; once the
// lock is gone it is reclaimed.
func TestReclaimKeepsLockedStage(t *testing.T) {
	base := t.TempDir()
	dir := staleStage(t, base)
	f, err := os.Open(filepath.Join(dir, "meta", ownerFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	removed, err := ReclaimStale(base)
	if err != nil || len(removed) != 0 {
		t.Fatalf("reclaimed %v (%v): the stage's builder holds its lock", removed, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the live stage was removed: %v", err)
	}
	f.Close()
	if removed, err := ReclaimStale(base); err != nil || len(removed) != 1 {
		t.Errorf("after its builder is gone: reclaimed %v (%v)", removed, err)
	}
}

// TestNewReclaimsEveryPlace: a new stage reclaims the stale stages in
// $TMPDIR, $VMDB2_STAGE_DIR and /tmp, not only where it goes itself, and
// never its own or a live one.
func TestNewReclaimsEveryPlace(t *testing.T) {
	if testing.Short() && os.Geteuid() != 0 {
		t.Skip("removes stages through the user namespace")
	}
	tmpdir, stagedir := t.TempDir(), t.TempDir()
	inTMPDIR, inStageDir, inTmp := staleStage(t, tmpdir), staleStage(t, stagedir), staleStage(t, "/tmp")

	t.Setenv("TMPDIR", tmpdir)
	t.Setenv("VMDB2_STAGE_DIR", stagedir)
	first, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Remove()
	for _, d := range []string{inTMPDIR, inStageDir, inTmp} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s was not reclaimed (reclaimed: %v)", d, first.Reclaimed)
		}
	}
	// A second build elsewhere leaves the first, live, stage alone.
	t.Setenv("VMDB2_STAGE_DIR", tmpdir)
	second, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Remove()
	if _, err := os.Stat(first.Dir); err != nil || len(second.Reclaimed) != 0 {
		t.Errorf("a live stage was reclaimed: %v, %v", second.Reclaimed, err)
	}
}
