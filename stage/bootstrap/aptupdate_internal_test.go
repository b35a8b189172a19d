package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// fakeApt is a target tree with apt-get, one source and its lists, and a
// Runner that counts `apt-get update` runs, rewriting the lists as apt
// does (same content, new file).
type fakeApt struct {
	root    string
	updates int
	fail    bool
}

func newFakeApt(t *testing.T) *fakeApt {
	t.Helper()
	f := &fakeApt{root: t.TempDir()}
	f.write(t, "usr/bin/apt-get", "")
	f.write(t, "etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\n")
	f.write(t, "usr/share/keyrings/debian-archive-keyring.gpg", "key")
	f.write(t, "var/lib/dpkg/arch", "amd64\n")
	f.rewriteLists(t)
	return f
}

func (f *fakeApt) write(t *testing.T, rel, content string) {
	t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeApt) rewriteLists(t *testing.T) {
	f.write(t, "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "release")
	f.write(t, "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", "packages")
}

func (f *fakeApt) run(t *testing.T) Runner {
	return func(_ context.Context, c userns.Cmd) error {
		if c.Argv[0] == "apt-get" && slices.Contains(c.Argv, "update") {
			if f.fail {
				return errors.New("apt-get update: network down")
			}
			f.updates++
			f.rewriteLists(t)
		}
		return nil
	}
}

// install runs AptInstall in f's target with memo and returns how many
// updates have run so far.
func (f *fakeApt) install(t *testing.T, memo *UpdateMemo) int {
	t.Helper()
	err := AptInstall(t.Context(), AptOptions{Root: f.root, Packages: []string{"hello"}, Clean: true,
		CacheDir: "-", Run: f.run(t), Updates: memo})
	if err != nil && !f.fail {
		t.Fatal(err)
	}
	return f.updates
}

// TestUpdateNotRepeated: within one build, apt-get update runs again only
// when something it reads or writes changed since the last one: a source
// added, a keyring, apt's configuration, dpkg's foreign architectures, the
// lists touched or removed, a failed update (but not a configuration file
// rewritten with the same content); never across builds or targets.
func TestUpdateNotRepeated(t *testing.T) {
	f := newFakeApt(t)
	memo := &UpdateMemo{}
	if n := f.install(t, memo); n != 1 {
		t.Fatalf("first run: %d updates, want 1", n)
	}
	if n := f.install(t, memo); n != 1 {
		t.Fatalf("second run with nothing changed: %d updates, want still 1", n)
	}
	changes := []struct {
		what   string
		change func()
	}{
		{"a source added", func() { f.write(t, "etc/apt/sources.list.d/extra.list", "deb http://example.org/x bookworm main\n") }},
		{"a keyring added", func() { f.write(t, "usr/share/keyrings/extra.gpg", "key") }},
		{"apt.conf.d changed", func() { f.write(t, "etc/apt/apt.conf.d/10languages", `Acquire::Languages "none";`) }},
		{"a foreign architecture", func() { f.write(t, "var/lib/dpkg/arch", "amd64\narm64\n") }},
		{"the sources edited", func() { f.write(t, "etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main contrib\n") }},
		{"a list rewritten", func() { f.rewriteLists(t) }},
		{"the lists removed", func() {
			os.RemoveAll(filepath.Join(f.root, "var/lib/apt/lists"))
			os.MkdirAll(filepath.Join(f.root, "var/lib/apt/lists"), 0o755)
		}},
	}
	// dpkg may rewrite a configuration file or keyring unchanged.
	f.write(t, "etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\n")
	f.write(t, "var/lib/dpkg/arch", "amd64\n")
	if n := f.install(t, memo); n != 1 {
		t.Fatalf("configuration rewritten with the same content: %d updates, want still 1", n)
	}
	for _, c := range changes {
		before := f.updates
		c.change()
		if n := f.install(t, memo); n != before+1 {
			t.Errorf("%s: %d updates, want %d", c.what, n, before+1)
		}
		if n := f.install(t, memo); n != before+1 {
			t.Errorf("after %s, nothing changed: %d updates, want %d", c.what, n, before+1)
		}
	}

	before := f.updates
	f.write(t, "etc/apt/sources.list.d/extra.list", "deb http://example.org/y bookworm main\n")
	f.fail = true
	f.install(t, memo)
	f.fail = false
	if n := f.install(t, memo); n != before+1 {
		t.Errorf("after a failed update: %d updates, want %d", n, before+1)
	}

	before = f.updates
	if n := f.install(t, &UpdateMemo{}); n != before+1 {
		t.Errorf("a new build (new memo): %d updates, want %d", n, before+1)
	}
	if n := f.install(t, nil); n != before+2 {
		t.Errorf("no memo: %d updates, want %d", n, before+2)
	}
	g := newFakeApt(t)
	if g.install(t, memo); g.updates != 1 {
		t.Errorf("another target in the same build: %d updates, want 1", g.updates)
	}
}
