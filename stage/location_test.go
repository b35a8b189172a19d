package stage

import (
	"os"
	"strings"
	"testing"
)

func TestBaseOrder(t *testing.T) {
	t.Setenv("VMDB2_STAGE_DIR", "/some/where")
	t.Setenv("TMPDIR", "/else/where")
	if d, why := Base(1 << 30); d != "/some/where" || why != "VMDB2_STAGE_DIR" {
		t.Errorf("with VMDB2_STAGE_DIR: %s (%s)", d, why)
	}
	t.Setenv("VMDB2_STAGE_DIR", "")
	if d, why := Base(1 << 30); d != "/else/where" || why != "TMPDIR" {
		t.Errorf("with TMPDIR: %s (%s)", d, why)
	}
	t.Setenv("TMPDIR", "")
	// Far more than any machine has: never RAM.
	if d, why := Base(1 << 60); d != os.TempDir() || why == "" {
		t.Errorf("huge stage: %s (%s), want %s", d, why, os.TempDir())
	}
}

func TestFitsIn(t *testing.T) {
	const G = 1 << 30
	for _, c := range []struct {
		need, free, avail int64
		ok                bool
		why               string
	}{
		{3 * G, 12 * G, 20 * G, true, "in memory"},
		{3 * G, 4 * G, 20 * G, false, "free"},
		{3 * G, 12 * G, 4 * G, false, "memory available"},
		{0, 12 * G, 20 * G, true, "in memory"},
	} {
		ok, why := fitsIn(c.need, c.free, c.avail)
		if ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("fitsIn(%d, %d, %d) = %v %q, want %v …%s…", c.need>>30, c.free>>30, c.avail>>30, ok, why, c.ok, c.why)
		}
	}
}

func TestRAMFitsChecksTheMount(t *testing.T) {
	dir := t.TempDir()
	var onTmpfs bool
	if ok, why := ramFits(dir, 0, 1<<40); !ok {
		if !strings.Contains(why, "not a tmpfs") {
			t.Errorf("ramFits(%s) refused for %q", dir, why)
		}
	} else {
		onTmpfs = true
	}
	if _, err := os.Stat(RAMDir); err == nil {
		ok, why := ramFits(RAMDir, 0, 1<<40)
		t.Logf("%s: %v (%s); test dir on tmpfs: %v", RAMDir, ok, why, onTmpfs)
	}
}
