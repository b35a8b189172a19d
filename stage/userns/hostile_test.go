package userns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file plant symbolic links (absolute, relative,
// ".."-chains, symlinked parents, /proc's magic links) and other surprises
// at every path of a stage that Run creates, mounts on, writes, reads or
// removes, pointing at a host "canary" directory outside the stage. The
// canary must come out unchanged (content, mode, times, entries) and its
// content must never be seen by the command.

// canaryText is the content of the canary's files.
const canaryText = "host canary: must never reach the target\n"

// canaryFiles are shaped like what Run writes or removes, so that
// following a link onto them would show: resolv.conf files, a sbin/
// without policy-rc.d (a write would add one), a policy/ with vmdb2's own
// policy-rc.d (a removal would take it) and empty directories such as
// created mount points are.
var (
	canaryFiles = map[string]string{
		"secret": canaryText, "resolv.conf": canaryText, "etc/resolv.conf": canaryText,
		"sbin/secret": canaryText, "policy/policy-rc.d": policyRcD, "archives/secret": canaryText,
	}
	canaryDirs = []string{"etc", "sbin", "policy", "archives", "empty", "x"}
)

// canary is a host directory outside every stage, and its state when made.
type canary struct {
	dir    string
	before map[string]string
}

func newCanary(t *testing.T) *canary {
	t.Helper()
	dir, err := os.MkdirTemp("", "userns-canary-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range canaryDirs {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range canaryFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Old times, set children first, so that any change shows.
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	old := time.Unix(1500000000, 0)
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Chtimes(paths[i], old, old); err != nil {
			t.Fatal(err)
		}
	}
	c := &canary{dir: dir}
	c.before = c.state(t)
	return c
}

// state describes every entry of the canary: type and mode, size, mtime,
// ctime (which any write, chmod, utimes or new entry changes) and content.
func (c *canary) state(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %o size %d mtime %d ctime %d", st.Mode, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %q", b)
		}
		m["."+strings.TrimPrefix(p, c.dir)] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("host canary: %v", err)
	}
	return m
}

func (c *canary) check(t *testing.T) {
	t.Helper()
	after := c.state(t)
	for k, v := range c.before {
		if after[k] != v {
			t.Errorf("host canary %s changed: was %s, is %q", k, v, after[k])
		}
	}
	for k, v := range after {
		if _, ok := c.before[k]; !ok {
			t.Errorf("host canary: %s (%s) was added", k, v)
		}
	}
	c.before = after // the next check reports only its own changes
}

// mirror gives the stage its own tree at the canary's host path, so that
// the absolute links resolve (inside the image, to these) instead of
// dangling.
func (c *canary) mirror(t *testing.T, stage string) {
	t.Helper()
	for _, d := range canaryDirs {
		if err := os.MkdirAll(filepath.Join(stage, c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name := range canaryFiles {
		if err := os.WriteFile(filepath.Join(stage, c.dir, name), []byte("the image's own\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// pointers returns ways of writing, in a link at image path at, a pointer
// to the host path target: absolute, relative with more ".." than the
// stage is deep, and an absolute path with a "/.." chain.
func pointers(at, target string) map[string]string {
	up := strings.Repeat("../", strings.Count(at, "/")+8)
	return map[string]string{
		"absolute": target,
		"relative": up + strings.TrimPrefix(target, "/"),
		"dotdot":   "/../../.." + target,
	}
}

// plant replaces the image path at of stage by a symlink to target.
func plant(t *testing.T, stage, at, target string) {
	t.Helper()
	p := filepath.Join(stage, at)
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// stillLink checks that the planted link at is still there, unchanged.
func stillLink(t *testing.T, stage, at, target string) {
	t.Helper()
	if l, err := os.Readlink(filepath.Join(stage, at)); err != nil || l != target {
		t.Errorf("the stage's link %s after the run: %q %v, want it unchanged (%q)", at, l, err, target)
	}
}

// hostile runs c and checks the outcome: either Run refused the stage
// before the command ran, with a message that names want (the path in the
// image), or the command ran and did not see the canary's content.
func hostile(t *testing.T, c Cmd, want string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := Run(ctx, c)
	var ee *ExitError
	switch {
	case ctx.Err() != nil:
		t.Errorf("Run did not end: %v", err)
	case err == nil, errors.As(err, &ee):
	case !strings.Contains(err.Error(), want):
		t.Errorf("Run refused the stage with %q, which does not name %s", err, want)
	default:
		t.Logf("refused: %v", err)
	}
	if strings.Contains(out.String()+errb.String(), canaryText) {
		t.Errorf("the command read the host canary: %q", out.String())
	}
	return out.String(), err
}

// TestHostileMountPoints: Virtual's mount points as links out of the
// stage resolve inside the image (or make Run fail naming them); a mount
// point that is no directory makes Run fail naming it.
func TestHostileMountPoints(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	for _, at := range []string{"/proc", "/sys", "/dev", "/dev/shm", "/run", "/tmp"} {
		for form, target := range pointers(at, c.dir) {
			for _, mirror := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %s mirror=%v", at, form, mirror), func(t *testing.T) {
					stage := newStage(t)
					if mirror {
						c.mirror(t, stage)
					}
					plant(t, stage, at, target)
					before := snapshot(t, stage)
					hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", at + "/secret"}}, at)
					c.check(t)
					sameTree(t, before, snapshot(t, stage))
					if at != "/dev/shm" {
						stillLink(t, stage, at, target)
					}
				})
			}
		}
	}
	t.Run("not directories", func(t *testing.T) {
		stage := newStage(t)
		if err := os.WriteFile(filepath.Join(stage, "proc"), []byte("a file\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "exit", "0"}}, "/proc"); err == nil {
			t.Error("Run mounted proc on a regular file")
		}
		os.Remove(filepath.Join(stage, "proc"))
		if err := syscall.Mkfifo(filepath.Join(stage, "tmp"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "exit", "0"}}, "/tmp"); err == nil {
			t.Error("Run mounted a tmpfs on a FIFO")
		}
		// A file bind over a FIFO of the image.
		file := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(file, []byte("bound\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := Cmd{Root: stage, Binds: []Bind{{Source: file, Target: "/tmp"}}, Argv: []string{"/nsprobe", "exit", "0"}}
		if _, err := hostile(t, cmd, "/tmp"); err == nil {
			t.Error("Run bound a file over a FIFO")
		}
	})
}

// TestHostilePolicyRcD: /usr/sbin and /usr as links out of the stage; a
// command that swaps /usr/sbin for a link to the host's policy-rc.d while
// it runs.
func TestHostilePolicyRcD(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	cases := map[string]string{}
	for form, target := range pointers("/usr/sbin", filepath.Join(c.dir, "sbin")) {
		cases["/usr/sbin "+form] = target
	}
	for form, target := range pointers("/usr", c.dir) {
		cases["/usr "+form] = target
	}
	for name, target := range cases {
		at, _, _ := strings.Cut(name, " ")
		for _, mirror := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s mirror=%v", name, mirror), func(t *testing.T) {
				stage := newStage(t)
				if mirror {
					c.mirror(t, stage)
				}
				plant(t, stage, at, target)
				before := snapshot(t, stage)
				hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/usr/sbin/secret"}}, at)
				c.check(t)
				sameTree(t, before, snapshot(t, stage))
				stillLink(t, stage, at, target)
			})
		}
	}
	t.Run("swapped while running", func(t *testing.T) {
		stage := newStage(t)
		policy := filepath.Join(c.dir, "policy")
		hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "relink", policy, "/usr/sbin"}}, "/usr/sbin")
		c.check(t)
	})
}

// TestHostileResolvConf: /etc and /etc/resolv.conf as links out of the
// stage or into /proc, a FIFO, and a command that swaps /etc for a link
// to a host directory while it runs.
func TestHostileResolvConf(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	cases := map[string]string{}
	for form, target := range pointers("/etc", filepath.Join(c.dir, "etc")) {
		cases["/etc "+form] = target
	}
	for form, target := range pointers("/etc/resolv.conf", filepath.Join(c.dir, "resolv.conf")) {
		cases["/etc/resolv.conf "+form] = target
	}
	for name, target := range cases {
		at, _, _ := strings.Cut(name, " ")
		for _, mirror := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s mirror=%v", name, mirror), func(t *testing.T) {
				stage := newStage(t)
				if mirror {
					c.mirror(t, stage)
				}
				plant(t, stage, at, target)
				before := snapshot(t, stage)
				hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/etc/resolv.conf"}}, at)
				c.check(t)
				sameTree(t, before, snapshot(t, stage))
				stillLink(t, stage, at, target)
				if mirror {
					// Every form leads, inside the image, to its own copy.
					own := filepath.Join(stage, c.dir, "resolv.conf")
					if at == "/etc" {
						own = filepath.Join(stage, c.dir, "etc/resolv.conf")
					}
					if b, _ := os.ReadFile(own); string(b) != "the image's own\n" {
						t.Errorf("the image's resolv.conf behind the link after the run: %q", b)
					}
				}
			})
		}
	}
	t.Run("swapped while running", func(t *testing.T) {
		stage := newStage(t)
		hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "relink", filepath.Join(c.dir, "etc"), "/etc"}}, "/etc")
		c.check(t)
	})
	t.Run("fifo", func(t *testing.T) {
		stage := newStage(t)
		p := filepath.Join(stage, "etc/resolv.conf")
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "exit", "0"}}, "/etc/resolv.conf")
	})
	// Proc's files are the kernel's, not the image's: writing the host's
	// resolv.conf into one is a write outside the image (as root, into
	// the host's sysctls, e.g. kernel/core_pattern). domainname belongs
	// to the namespace and shows whether the write happened.
	t.Run("into proc", func(t *testing.T) {
		host, err := os.ReadFile("/etc/resolv.conf")
		if err != nil || len(bytes.TrimSpace(host)) == 0 {
			t.Skip("the host has no resolv.conf to lend")
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(host)), "\n")
		stage := newStage(t)
		plant(t, stage, "/etc/resolv.conf", "/proc/sys/kernel/domainname")
		out, _ := hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/proc/sys/kernel/domainname"}}, "/etc/resolv.conf")
		if strings.Contains(out, strings.TrimSpace(first)) {
			t.Errorf("the host's resolv.conf was written into /proc/sys/kernel/domainname: %q", out)
		}
	})
}

// TestHostileBinds: bind targets (missing or not, directories and files)
// behind links out of the stage, and behind links into an earlier bind's
// host directory, with and without Virtual.
func TestHostileBinds(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("bound\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(src, 0o755)
	const target = "/var/cache/apt/archives"
	type tc struct{ at, link string }
	cases := map[string]tc{}
	for _, at := range []string{"/var", "/var/cache", target} {
		for form, link := range pointers(at, c.dir) {
			cases[at+" "+form] = tc{at, link}
		}
	}
	for name, k := range cases {
		for _, virtual := range []bool{false, true} {
			for _, mirror := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s virtual=%v mirror=%v", name, virtual, mirror), func(t *testing.T) {
					stage := newStage(t)
					if mirror {
						c.mirror(t, stage)
					}
					plant(t, stage, k.at, k.link)
					before := snapshot(t, stage)
					hostile(t, Cmd{Root: stage, Virtual: virtual, Binds: []Bind{{Source: src, Target: target}},
						Argv: []string{"/nsprobe", "cat", target + "/secret"}}, k.at)
					c.check(t)
					sameTree(t, before, snapshot(t, stage))
					stillLink(t, stage, k.at, k.link)
				})
			}
		}
	}

	// The first bind is the host's canary (as the apt cache is a host
	// directory); the second's target leads into it through a link.
	type through struct{ link, target, source string }
	for name, k := range map[string]through{
		"absolute dir":      {"/mnt/a", "/mnt/b/new", src},
		"relative dir":      {"a", "/mnt/b/new", src},
		"absolute file":     {"/mnt/a", "/mnt/b/new", filepath.Join(src, "f")},
		"existing dir":      {"/mnt/a/x", "/mnt/b", src},
		"existing file":     {"/mnt/a/secret", "/mnt/b", filepath.Join(src, "f")},
		"deep missing dirs": {"/mnt/a/x", "/mnt/b/new/deeper", src},
	} {
		for _, virtual := range []bool{false, true} {
			t.Run(fmt.Sprintf("through an earlier bind %s virtual=%v", name, virtual), func(t *testing.T) {
				stage := newStage(t)
				linkAt := "/mnt/b"
				plant(t, stage, linkAt, k.link)
				hostile(t, Cmd{Root: stage, Virtual: virtual, Binds: []Bind{{Source: c.dir, Target: "/mnt/a"}, {Source: k.source, Target: k.target}},
					Argv: []string{"/nsprobe", "exit", "0"}}, linkAt)
				c.check(t)
			})
		}
	}
}

// TestHostileMagicLinks: links through /proc's magic links, in particular
// to the descriptors the namespace's init holds on host directories (the
// binds' sources) while it sets up.
func TestHostileMagicLinks(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	for _, at := range []string{"/usr/sbin", "/etc", "/tmp", "/mnt/b"} {
		for n := 3; n <= 18; n++ {
			link := fmt.Sprintf("/proc/1/fd/%d", n)
			t.Run(fmt.Sprintf("%s to %s", at, link), func(t *testing.T) {
				stage := newStage(t)
				plant(t, stage, at, link)
				hostile(t, Cmd{Root: stage, Virtual: true, Binds: []Bind{{Source: c.dir, Target: "/mnt/a"}, {Source: c.dir, Target: "/mnt/b/new"}},
					Argv: []string{"/nsprobe", "cat", at + "/secret"}}, at)
				c.check(t)
			})
		}
	}
	for _, link := range []string{"/proc/self/cwd", "/proc/1/root", "/proc/self/root/tmp"} {
		t.Run("/tmp to "+link, func(t *testing.T) {
			stage := newStage(t)
			plant(t, stage, "/tmp", link)
			hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/tmp/secret"}}, "/tmp")
			c.check(t)
		})
	}
}

// TestHostileRootSwap: the stage's host path is replaced by a link to the
// canary after Run checked it and before the namespace is set up; the
// namespace must neither be confined to the canary nor change it, and the
// restoring afterwards must not happen there either.
func TestHostileRootSwap(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	stage := newStage(t)
	moved := stage + ".moved"
	testHookStarted = func(int) {
		if err := os.Rename(stage, moved); err != nil {
			t.Error(err)
			return
		}
		if err := os.Symlink(c.dir, stage); err != nil {
			t.Error(err)
		}
	}
	defer func() {
		testHookStarted = nil
		os.Remove(stage)
		if err := os.Rename(moved, stage); err != nil {
			t.Fatal(err)
		}
	}()
	out, err := hostile(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/secret"}}, stage)
	t.Logf("output %q, error %v", out, err)
	c.check(t)
}

// TestRemoveAllKeepsLinkTargets: RemoveAll of a tree (with files of mapped
// owners, which an ordinary user removes through the namespace) holding
// links out of it never removes what they point to.
func TestRemoveAllKeepsLinkTargets(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	stage := newStage(t)
	tree := filepath.Join(stage, "tree")
	for at, link := range map[string]string{
		"abs":           c.dir,
		"a/rel":         strings.Repeat("../", 12) + strings.TrimPrefix(c.dir, "/"),
		"a/b/dotdot":    "/../../" + c.dir,
		"a/b/file":      filepath.Join(c.dir, "secret"),
		"a/b/sub/deep":  filepath.Join(c.dir, "empty"),
		"locked-parent": filepath.Join(c.dir, "x"),
	} {
		plant(t, tree, at, link)
	}
	// Then give the directories owners that the calling user is not.
	mustRun(t, Cmd{Root: stage, Argv: []string{"/nsprobe", "mktree"}})
	if err := RemoveAll(tree); err != nil {
		t.Fatal(err)
	}
	if fileExists(tree) {
		t.Errorf("%s still exists", tree)
	}
	// A path that is itself a link: the link goes, not its target.
	plant(t, stage, "/link", c.dir)
	if err := RemoveAll(filepath.Join(stage, "link")); err != nil {
		t.Fatal(err)
	}
	if fileExists(filepath.Join(stage, "link")) {
		t.Error("the link RemoveAll was given still exists")
	}
	c.check(t)
}

// TestHostileWorkingDir: Dir behind links out of the stage, and through
// /proc's magic links to init's descriptors, is the image's or refused.
func TestHostileWorkingDir(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	links := pointers("/w", c.dir)
	for n := 3; n <= 18; n++ {
		links[fmt.Sprintf("fd %d", n)] = fmt.Sprintf("/proc/1/fd/%d", n)
	}
	for name, link := range links {
		t.Run(name, func(t *testing.T) {
			stage := newStage(t)
			plant(t, stage, "/w", link)
			hostile(t, Cmd{Root: stage, Virtual: true, Dir: "/w", Binds: []Bind{{Source: c.dir, Target: "/mnt"}},
				Argv: []string{"/nsprobe", "write", "policy-rc.d", "x"}}, "/w")
			hostile(t, Cmd{Root: stage, Virtual: true, Dir: "/w", Argv: []string{"/nsprobe", "cat", "secret"}}, "/w")
			c.check(t)
		})
	}
}

// TestNoHostDescriptors: neither the command nor the namespace's init
// (whose descriptors the command can reopen through /proc/1/fd) holds a
// descriptor of a host file or directory, not even one the caller
// inherited without close-on-exec, nor the cgroup files Go's runtime
// keeps open for its GOMAXPROCS.
func TestNoHostDescriptors(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	// Opened without O_CLOEXEC, as a descriptor a build's own parent
	// left open would be.
	fd, err := syscall.Open(c.dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	stage := newStage(t)
	for _, pid := range []string{"1", "self"} {
		out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "fds", pid}})
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			_, l, _ := strings.Cut(line, " ")
			if l == "" || strings.HasPrefix(l, "pipe:") || strings.HasPrefix(l, "anon_inode:") || strings.HasPrefix(l, "socket:") {
				continue
			}
			if pid == "self" && strings.HasPrefix(l, "/sys/") {
				continue // nsprobe's own runtime, on the namespace's read-only /sys
			}
			t.Errorf("process %s in the namespace holds descriptor %s", pid, line)
		}
	}
}
