package bootstrap

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/internal/canary"
)

// targetOp is one piece of this package's host-side work in a target, with
// the paths of the target it touches.
type targetOp struct {
	name     string
	paths    []string
	mustFail bool // the op looks for something only the host has
	rootOnly bool
	run      func(t *testing.T, target string) error
}

func targetOps(t *testing.T) []targetOp {
	keyring := filepath.Join(t.TempDir(), "test.gpg")
	if err := os.WriteFile(keyring, []byte("not a real keyring"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(t.TempDir(), "devices.json")
	devPaths := []string{"dev/null", "dev/console", "dev/pts", "dev/fd"}
	return []targetOp{
		{name: "unsafe-io", paths: []string{unsafeIOFile}, run: func(t *testing.T, target string) error {
			remove, err := addUnsafeIO(target)
			if rerr := remove(); err == nil {
				err = rerr
			}
			return err
		}},
		{name: "keyring", paths: []string{"etc/apt/trusted.gpg.d/test.gpg"}, run: func(t *testing.T, target string) error {
			return installKeyring(keyring, target)
		}},
		{name: "resolv.conf", paths: []string{"etc/resolv.conf"}, run: func(t *testing.T, target string) error {
			return addResolvConf(target)()
		}},
		{name: "apt-get", paths: []string{"usr/bin/apt-get"}, mustFail: true, run: func(t *testing.T, target string) error {
			return checkAptGet(target)
		}},
		{name: "mmdebstrap", paths: []string{"etc/machine-id", "etc/apt/apt.conf.d/99mmdebstrap", "var/lib/apt/extended_states"},
			run: func(t *testing.T, target string) error { return finishMmdebstrap(target) }},
		{name: "placeholders", paths: devPaths, run: func(t *testing.T, target string) error {
			binds, created, err := preparePlaceholders(target)
			for _, b := range binds {
				// The namespace mounts over the host path: it must
				// lead to the placeholder in the target.
				if real, _ := filepath.EvalSymlinks(b[1]); !strings.HasPrefix(real, target+"/") {
					t.Errorf("bind target %s leads to %s, outside the target", b[1], real)
				}
			}
			if rerr := removePlaceholders(target, created); err == nil {
				err = rerr
			}
			return err
		}},
		{name: "dev-recorded", paths: devPaths, run: func(t *testing.T, target string) error {
			_, err := finishDev(target, manifest, 1700000000, true)
			return err
		}},
		{name: "dev-mknod", paths: devPaths, rootOnly: true, run: func(t *testing.T, target string) error {
			_, err := finishDev(target, manifest, 1700000000, false)
			return err
		}},
	}
}

// lookalikes are the files a trap at p could lead to in the canary
// directory (through p's parent or its first component), for the canary
// to hold.
func lookalikes(paths []string) []string {
	var l []string
	for _, p := range paths {
		_, rest, _ := strings.Cut(p, "/")
		l = append(l, path.Base(p), rest)
	}
	return l
}

// TestTargetPathsConfined plants every link trap at every path each piece
// of host-side work touches in the target, with a bare canary directory
// and with one holding the files looked for: the host canary is neither
// changed nor read into the target.
func TestTargetPathsConfined(t *testing.T) {
	for _, op := range targetOps(t) {
		if op.rootOnly && os.Geteuid() != 0 {
			continue
		}
		for _, p := range op.paths {
			for _, trap := range canary.Traps {
				for _, extra := range [][]string{nil, lookalikes(op.paths)} {
					name := op.name + "/" + p + "/" + string(trap)
					if extra != nil {
						name += "/lookalikes"
					}
					t.Run(name, func(t *testing.T) {
						host := canary.New(t, extra...)
						target := t.TempDir()
						host.Plant(t, target, p, trap)
						err := op.run(t, target)
						t.Logf("%s: %v", op.name, err)
						if op.mustFail && err == nil {
							t.Errorf("%s found the host's file through a link", op.name)
						}
						host.Check(t)
						host.NotInTree(t, target)
					})
				}
			}
		}
	}
}

// TestTargetFIFOs: a FIFO at any of those paths is never read or written.
func TestTargetFIFOs(t *testing.T) {
	for _, op := range targetOps(t) {
		if op.rootOnly && os.Geteuid() != 0 {
			continue
		}
		for _, p := range op.paths {
			t.Run(op.name+"/"+p, func(t *testing.T) {
				target := t.TempDir()
				f := canary.NewFIFO(t, filepath.Join(target, p))
				var err error
				if canary.Run(func() { err = op.run(t, target) }, f) {
					t.Errorf("%s read or wrote the FIFO at %s", op.name, p)
				}
				t.Logf("%s: %v", op.name, err)
			})
		}
	}
}

// TestTargetPathsAsOrdinaryUser runs the tests above as vmdb2-test, as
// unprivileged builds run this code.
func TestTargetPathsAsOrdinaryUser(t *testing.T) {
	asuser.Run(t, "TestTargetPathsConfined", "TestTargetFIFOs")
}

// TestFinishMmdebstrap: what debootstrap would not leave goes, and
// machine-id becomes read-only.
func TestFinishMmdebstrap(t *testing.T) {
	target := t.TempDir()
	for _, p := range []string{"etc/apt/apt.conf.d/99mmdebstrap", "var/lib/apt/extended_states", "etc/machine-id", "etc/apt/apt.conf.d/keep"} {
		os.MkdirAll(filepath.Join(target, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(target, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := finishMmdebstrap(target); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/apt/apt.conf.d/99mmdebstrap", "var/lib/apt/extended_states"} {
		if _, err := os.Lstat(filepath.Join(target, p)); err == nil {
			t.Errorf("%s is left", p)
		}
	}
	if fi, err := os.Stat(filepath.Join(target, "etc/machine-id")); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("machine-id: %v %v, want mode 0444", fi, err)
	}
	if _, err := os.Stat(filepath.Join(target, "etc/apt/apt.conf.d/keep")); err != nil {
		t.Error(err)
	}
	if err := finishMmdebstrap(target); err != nil {
		t.Errorf("a second time: %v", err)
	}
}
