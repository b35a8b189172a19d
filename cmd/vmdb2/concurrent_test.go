package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// minbaseSpec bootstraps a minbase bookworm (the smallest package set
// with apt) into an ext4 image.
const minbaseSpec = `steps:
  - mkimg: "{{ output }}"
    size: 1G
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - debootstrap: bookworm
    mirror: http://deb.debian.org/debian
    target: /
    variant: minbase
`

// builder runs vmdb2 as the test's user or, when the test is root, as
// the ordinary user too.
type builder struct {
	name string
	prog string
	args []string
	own  func(dir string) // give a directory to the builder
}

func builders(t *testing.T) []builder {
	t.Helper()
	bs := []builder{{name: "uid " + strconv.Itoa(os.Geteuid()), prog: binary, own: func(string) {}}}
	if os.Geteuid() == 0 {
		uid, gid := ordinaryUser(t)
		bs = append(bs, builder{name: testUser, prog: "setpriv",
			args: []string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--init-groups", userBinary(t)},
			own:  func(dir string) { chownTree(t, dir, uid, gid) }})
	}
	return bs
}

func (b builder) command(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(b.prog, append(append([]string{}, b.args...), args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "HOME="+dir), env...)
	return cmd
}

// TestConcurrentColdBuilds runs two cold debootstrap builds at once that
// share one empty package cache: both must succeed, and the packages be
// in the cache afterwards. As root and as the ordinary user.
func TestConcurrentColdBuilds(t *testing.T) {
	checkTools(t, "mmdebstrap", "mke2fs")
	needMirror(t)
	parallelBuild(t)
	for _, b := range builders(t) {
		t.Run(b.name, func(t *testing.T) {
			cache := t.TempDir()
			b.own(cache)
			var wg sync.WaitGroup
			results := make([]result, 2)
			dirs := make([]string, 2)
			start := time.Now()
			for i := range results {
				dirs[i] = writeWorkDir(t, minbaseSpec)
				b.own(dirs[i])
				cmd := b.command(dirs[i], []string{"VMDB2_CACHE_DIR=" + cache, "TMPDIR=" + filepath.Join(dirs[i], "tmp")},
					"-v", "spec.vmdb", "--output", "out.img")
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = runCommand(t, cmd)
				}()
			}
			wg.Wait()
			t.Logf("two cold builds as %s in %v", b.name, time.Since(start).Round(time.Second))
			for i, r := range results {
				if r.code != 0 {
					t.Errorf("build %d failed (%d):\n%s\n%s", i+1, r.code, tailText(r.stdout, 30), r.stderr)
				}
				if strings.Contains(r.stdout, "waiting for the shared package cache") {
					t.Logf("build %d waited for the other's downloads", i+1)
				}
				noStageLeft(t, filepath.Join(dirs[i], "tmp"))
			}
			debs, _ := filepath.Glob(filepath.Join(cache, "apt-archives", "*.deb"))
			if len(debs) == 0 {
				t.Errorf("no package in the shared cache %s", cache)
			}
		})
	}
}

// TestKilledDebootstrapLeavesNoTemp SIGKILLs a build while mmdebstrap
// runs: what mmdebstrap keeps in its TMPDIR until it exits must be in the
// build's stage (which the next build reclaims), not in the user's
// $TMPDIR.
func TestKilledDebootstrapLeavesNoTemp(t *testing.T) {
	checkTools(t, "mmdebstrap")
	needMirror(t)
	for _, b := range builders(t) {
		t.Run(b.name, func(t *testing.T) {
			dir := writeWorkDir(t, minbaseSpec)
			tmp, stages := filepath.Join(dir, "tmp"), filepath.Join(dir, "stages")
			if err := os.Mkdir(stages, 0o755); err != nil {
				t.Fatal(err)
			}
			b.own(dir)
			env := []string{"TMPDIR=" + tmp, "VMDB2_STAGE_DIR=" + stages, "VMDB2_CACHE_DIR=" + filepath.Join(dir, "cache")}
			s := startUntil(t, b.command(dir, env, "-v", "spec.vmdb", "--output", "out.img"), "apt-get update", 120*time.Second)
			// The marker is this build's own stage directory: other
			// packages' tests run mmdebstrap at the same time.
			marker := stages + "/"
			s.cmd.Process.Signal(syscall.SIGKILL)
			s.wait()
			killLeft(t, marker)
			noStageLeft(t, tmp)
		})
	}
}

// tailText is the last n lines of s.
func tailText(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
