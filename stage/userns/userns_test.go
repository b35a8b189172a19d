package userns

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// Environment of the tests re-run as an ordinary user by TestAsOrdinaryUser.
const (
	envProbe  = "VMDB2_USERNS_TEST_PROBE" // path of a built nsprobe
	envNoSub  = "VMDB2_USERNS_EXPECT_UNAVAILABLE"
	envCaller = "VMDB2_USERNS_TEST_CALLER" // stage dir: act as a build that TestKilledCaller kills
)

var tmpRoot string // removed after the tests

func TestMain(m *testing.M) {
	Init()
	if stage := os.Getenv(envCaller); stage != "" {
		os.Exit(caller(stage))
	}
	code := m.Run()
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

// caller is the test binary acting as a build: it runs daemons in a stage,
// says which pid the namespace's init has, and waits to be killed.
func caller(stage string) int {
	testHookStarted = func(pid int) { fmt.Printf("init %d\n", pid) }
	err := Run(context.Background(), Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "spawn"}, Stdout: os.Stdout, Stderr: os.Stderr})
	fmt.Println("Run returned:", err)
	return 1
}

func init() {
	RegisterHelper("test.id", func(args []string) error {
		wd, _ := os.Getwd()
		h, _ := os.Hostname()
		fmt.Printf("uid=%d gid=%d pid=%d wd=%s host=%s env=%s\n", os.Getuid(), os.Getgid(), os.Getpid(), wd, h, os.Getenv("TESTVAR"))
		return nil
	})
	RegisterHelper("test.fail", func(args []string) error { return errors.New("boom") })
}

var (
	availOnce sync.Once
	availErr  error
)

// needNS skips the test under -short; unusable namespaces fail it with
// the fix.
func needNS(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("uses namespaces: skipped with -short")
	}
	availOnce.Do(func() { availErr = Available() })
	testreq.Need(t, testreq.Userns, availErr)
}

func sharedTmp(t *testing.T) string {
	t.Helper()
	if tmpRoot == "" {
		d, err := os.MkdirTemp("", "userns-test-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		tmpRoot = d
	}
	return tmpRoot
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// probe returns the path of the static nsprobe program.
func probe(t *testing.T) string {
	t.Helper()
	probeOnce.Do(func() {
		if p := os.Getenv(envProbe); p != "" {
			probePath = p
			return
		}
		out := filepath.Join(sharedTmp(t), "nsprobe")
		cmd := exec.Command(goTool(), "build", "-o", out, "./testdata/nsprobe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("building nsprobe: %v\n%s", err, b)
			return
		}
		probePath = out
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probePath
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }

// newStage makes a tiny stage: /nsprobe as its only program, /etc with a
// resolv.conf, an empty /usr/sbin, alone in a directory of the test's own
// (as a build's trees are in the stage). Both are removed with RemoveAll at
// the end.
func newStage(t *testing.T) string {
	t.Helper()
	src := probe(t)
	holder, err := os.MkdirTemp("", "userns-stage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveAll(holder); err != nil {
			t.Errorf("RemoveAll(stage): %v", err)
		}
	})
	dir := filepath.Join(holder, "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/resolv.conf"), []byte("nameserver 192.0.2.1 # stage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nsprobe"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs c and returns its standard output.
func run(t *testing.T, c Cmd) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := Run(context.Background(), c)
	if errb.Len() > 0 {
		t.Logf("stderr of %v: %s", c.Argv, errb.String())
	}
	return out.String(), err
}

func mustRun(t *testing.T, c Cmd) string {
	t.Helper()
	out, err := run(t, c)
	if err != nil {
		t.Fatalf("Run(%v %s): %v", c.Argv, c.Helper, err)
	}
	return out
}

// snapshot describes every file of a tree: type, mode, owner, size, content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d %d", fi.Mode(), st.Uid, st.Gid, fi.Size())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		m[strings.TrimPrefix(p, root)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("stage changed: %q was %q, is %q", k, v, after[k])
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("stage changed: %q (%s) was added", k, v)
		}
	}
}

func hostMounts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// nsWatch records the PID namespace of each Run's init through the test
// hook, so that tests can look for its processes on the host.
type nsWatch struct {
	mu    sync.Mutex
	links []string
}

func watchNS(t *testing.T) *nsWatch {
	w := &nsWatch{}
	testHookStarted = func(pid int) {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			t.Errorf("reading the pid namespace of %d: %v", pid, err)
			return
		}
		w.links = append(w.links, l)
	}
	t.Cleanup(func() { testHookStarted = nil })
	return w
}

func (w *nsWatch) last(t *testing.T) string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.links) == 0 {
		t.Fatal("no namespace was started")
	}
	return w.links[len(w.links)-1]
}

// members lists the host pids of the processes in PID namespace link.
func members(link string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && l == link {
			pids = append(pids, pid)
		}
	}
	return pids
}

// living returns the pids that are not zombies.
func living(pids []int) []int {
	var out []int
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ...; comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

func TestAvailable(t *testing.T) {
	needNS(t)
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	m, err := Mapping()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mapping: %v", m)
}

func TestInsideIsRoot(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "id"}})
	if !strings.HasPrefix(out, "uid=0 gid=0 euid=0 ") {
		t.Errorf("nsprobe id: %q", out)
	}
	out = mustRun(t, Cmd{Root: stage, Argv: []string{"nsprobe", "id"}, Env: []string{"PATH=/"}})
	if !strings.HasPrefix(out, "uid=0 gid=0 euid=0 ") {
		t.Errorf("nsprobe id found on PATH: %q", out)
	}

	// A registered Go helper runs as the namespace's PID 1, as root,
	// inside the stage, with Env and the host name.
	out = mustRun(t, Cmd{Root: stage, Helper: "test.id", Env: []string{"TESTVAR=v"}, Hostname: "stagehost"})
	if want := "uid=0 gid=0 pid=1 wd=/ host=stagehost env=v\n"; out != want {
		t.Errorf("helper in stage: %q, want %q", out, want)
	}
	out = mustRun(t, Cmd{Helper: "test.id", Dir: "/tmp"})
	if want := "uid=0 gid=0 pid=1 wd=/tmp host=localhost env=\n"; out != want {
		t.Errorf("helper without root: %q, want %q", out, want)
	}
}

// subStart returns the start of the first range of 65535+ ids of the
// current user in file, read independently of the package's parser.
func subStart(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	if out, err := exec.Command("id", "-un").Output(); err == nil {
		name = strings.TrimSpace(string(out))
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 3 && (f[0] == name || f[0] == strconv.Itoa(os.Getuid())) {
			if n, _ := strconv.Atoi(f[2]); n >= 65535 {
				s, _ := strconv.Atoi(f[1])
				return s
			}
		}
	}
	t.Fatalf("no range for %s in %s", name, file)
	return 0
}

func TestOwnersMapToHost(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	mustRun(t, Cmd{Root: stage, Argv: []string{"/nsprobe", "chown", "/owned1000", "1000", "1000"}})
	mustRun(t, Cmd{Root: stage, Argv: []string{"/nsprobe", "chown", "/owned0", "0", "42"}})

	wantU1000, wantG1000, wantU0, wantG42 := 1000, 1000, 0, 42
	if os.Geteuid() != 0 {
		su, sg := subStart(t, "/etc/subuid"), subStart(t, "/etc/subgid")
		wantU1000, wantG1000, wantU0, wantG42 = su+999, sg+999, os.Getuid(), sg+41
	}
	for _, c := range []struct {
		path     string
		uid, gid int
	}{{"owned1000", wantU1000, wantG1000}, {"owned0", wantU0, wantG42}} {
		fi, err := os.Lstat(filepath.Join(stage, c.path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != c.uid || int(st.Gid) != c.gid {
			t.Errorf("%s is %d:%d on the host, want %d:%d", c.path, st.Uid, st.Gid, c.uid, c.gid)
		}
	}
}

// mountChecker is a writer that, at the first output of the process (so
// while its namespace is alive), records the host's mount table.
type mountChecker struct {
	buf    bytes.Buffer // not embedded: io.Copy would use its ReadFrom
	once   sync.Once
	during string
}

func (w *mountChecker) Write(p []byte) (int, error) {
	w.once.Do(func() {
		b, err := os.ReadFile("/proc/self/mountinfo")
		w.during = string(b)
		if err != nil {
			w.during = err.Error()
		}

	})
	return w.buf.Write(p)
}

func TestVirtualFilesystems(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	before := snapshot(t, stage)
	hostBefore := hostMounts(t)

	var w mountChecker
	if err := Run(context.Background(), Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/proc/self/mountinfo"}, Stdout: &w, Stderr: os.Stderr}); err != nil {
		t.Fatal(err)
	}
	inside := w.buf.String()
	for _, want := range []string{" / /proc rw,nosuid,nodev,noexec", " - proc ", " /sys ro,", " /dev ", " /dev/null ", " /dev/urandom ",
		" /dev/pts ", " - devpts ", " /dev/shm ", " /run ", " /tmp "} {
		if !strings.Contains(inside, want) {
			t.Errorf("mountinfo inside lacks %q:\n%s", want, inside)
		}
	}
	if strings.Contains(inside, stage+"/") {
		t.Errorf("the inside sees host paths of the stage:\n%s", inside)
	}
	if strings.Contains(inside, " /etc/resolv.conf ") {
		t.Errorf("resolv.conf is a mount point (packages cannot replace it):\n%s", inside)
	}
	if w.during == "" || strings.Contains(w.during, stage) || strings.Count(w.during, " - proc ") != strings.Count(hostBefore, " - proc ") {
		t.Errorf("host mount table while the namespace ran mentions the stage or a new proc:\n%s", w.during)
	}
	if w.during != hostBefore {
		t.Errorf("host mount table changed while the namespace ran:\nbefore:\n%s\nduring:\n%s", hostBefore, w.during)
	}

	if out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "devnull"}}); out != "devnull ok\n" {
		t.Errorf("devnull: %q", out)
	}
	if host, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		if out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/etc/resolv.conf"}}); out != string(host) {
			t.Errorf("resolv.conf inside is %q, want the host's %q", out, host)
		}
	}
	if out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/usr/sbin/policy-rc.d"}}); !strings.Contains(out, "exit 101") {
		t.Errorf("policy-rc.d inside: %q", out)
	}
	if out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "hostname"}}); out != "localhost\n" {
		t.Errorf("hostname inside: %q", out)
	}
	if out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "modes", "/tmp", "/run/lock", "/dev/shm", "/dev"}}); out != "/tmp dtrwxrwxrwx\n/run/lock dtrwxrwxrwx\n/dev/shm dtrwxrwxrwx\n/dev drwxr-xr-x\n" {
		t.Errorf("modes inside:\n%s", out)
	}
	// Writes to the tmpfs mounts stay inside.
	mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "write", "/tmp/x", "x"}})
	mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "write", "/run/x", "x"}})

	sameTree(t, before, snapshot(t, stage))
	if after := hostMounts(t); after != hostBefore {
		t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", hostBefore, after)
	}
}

// TestResolvConfLent: the host's resolv.conf is lent to the stage's file
// for each command, which gets its own content and mtime back afterwards;
// a command that writes or replaces the file keeps its result (as packages
// such as systemd-resolved do), and the host's file is never touched.
func TestResolvConfLent(t *testing.T) {
	needNS(t)
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		err = fmt.Errorf("the host has no /etc/resolv.conf to lend to the stage: %w", err)
	}
	testreq.Need(t, testreq.Network, err)
	stage := newStage(t)
	file := filepath.Join(stage, "etc/resolv.conf")
	old := time.Unix(1600000000, 0)
	if err := os.Chtimes(file, old, old); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/etc/resolv.conf"}}); out != string(host) {
		t.Errorf("resolv.conf inside is %q, want the host's %q", out, host)
	}
	if b, _ := os.ReadFile(file); string(b) != "nameserver 192.0.2.1 # stage\n" {
		t.Errorf("the stage's resolv.conf after the command: %q, want its own content back", b)
	}
	if fi, err := os.Stat(file); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("the stage's resolv.conf mtime after the command: %v, want %v", fi.ModTime(), old)
	}

	// A read-only resolv.conf gets its content back too (as an ordinary
	// user, Run is its owner but not root).
	if err := os.Chmod(file, 0o444); err != nil {
		t.Fatal(err)
	}
	mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/etc/resolv.conf"}})
	if b, _ := os.ReadFile(file); string(b) != "nameserver 192.0.2.1 # stage\n" {
		t.Errorf("the stage's read-only resolv.conf after the command: %q, want its own content back", b)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("the stage's read-only resolv.conf after the command: mode %v, want 0444", fi.Mode())
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}

	// Written by the command: stays.
	mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "write", "/etc/resolv.conf", "nameserver 192.0.2.53\n"}})
	if b, _ := os.ReadFile(file); string(b) != "nameserver 192.0.2.53\n" {
		t.Errorf("resolv.conf written by the command: %q", b)
	}
	// Replaced by a symlink into /run (systemd-resolved's postinst): works
	// and stays; the next command reads the host's through the link.
	mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "symlink", "../run/systemd/resolve/stub-resolv.conf", "/etc/resolv.conf"}})
	if l, err := os.Readlink(file); err != nil || l != "../run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("resolv.conf replaced by a symlink: %q %v", l, err)
	}
	if out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/etc/resolv.conf"}}); out != string(host) {
		t.Errorf("resolv.conf through the link: %q, want the host's", out)
	}
	if now, _ := os.ReadFile("/etc/resolv.conf"); string(now) != string(host) {
		t.Errorf("the host's resolv.conf changed: %q", now)
	}
}

func TestVirtualMissingMountPoints(t *testing.T) {
	needNS(t)
	// A stage with no /etc, /usr/sbin, /proc, /dev...: mount points are
	// created for the run and removed afterwards.
	stage := newStage(t)
	for _, d := range []string{"etc", "usr"} {
		if err := os.RemoveAll(filepath.Join(stage, d)); err != nil {
			t.Fatal(err)
		}
	}
	// resolv.conf as a dangling link into /run (systemd-resolved).
	if err := os.Mkdir(filepath.Join(stage, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(stage, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, stage)
	out := mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "cat", "/etc/resolv.conf"}})
	if host, err := os.ReadFile("/etc/resolv.conf"); err == nil && out != string(host) {
		t.Errorf("resolv.conf through the link: %q, want %q", out, host)
	}
	sameTree(t, before, snapshot(t, stage))
}

func TestBinds(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o777); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, stage)
	binds := []Bind{{Source: src, Target: "/var/cache/apt/archives"}}
	if out := mustRun(t, Cmd{Root: stage, Virtual: true, Binds: binds, Argv: []string{"/nsprobe", "cat", "/var/cache/apt/archives/f"}}); out != "from host" {
		t.Errorf("bind mount content: %q", out)
	}
	mustRun(t, Cmd{Root: stage, Binds: binds, Argv: []string{"/nsprobe", "write", "/var/cache/apt/archives/new", "x"}})
	if b, err := os.ReadFile(filepath.Join(src, "new")); err != nil || string(b) != "x" {
		t.Errorf("write through the bind: %q %v", b, err)
	}
	binds[0].ReadOnly = true
	if _, err := run(t, Cmd{Root: stage, Binds: binds, Argv: []string{"/nsprobe", "write", "/var/cache/apt/archives/ro", "x"}}); err == nil {
		t.Error("a read-only bind was writable")
	}
	// A file bind.
	fileBind := []Bind{{Source: filepath.Join(src, "f"), Target: "/etc/hostfile", ReadOnly: true}}
	if out := mustRun(t, Cmd{Root: stage, Binds: fileBind, Argv: []string{"/nsprobe", "cat", "/etc/hostfile"}}); out != "from host" {
		t.Errorf("file bind: %q", out)
	}
	sameTree(t, before, snapshot(t, stage))

	// Without a Root, binds go over host paths, inside the namespace only.
	other := t.TempDir()
	out := mustRun(t, Cmd{Binds: []Bind{{Source: src, Target: other}}, Argv: []string{"cat", filepath.Join(other, "f")}})
	if out != "from host" {
		t.Errorf("bind without root: %q", out)
	}
	if fileExists(filepath.Join(other, "f")) {
		t.Error("a bind without root was visible on the host")
	}
}

// TestBindsOnNamespaceMounts: bind targets on the namespace's own tmpfs
// mounts (created there, gone with them) and a file bind over a missing
// file of the image (created, removed afterwards), as the grub step binds
// its helpers.
func TestBindsOnNamespaceMounts(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	src := t.TempDir()
	file := filepath.Join(src, "f")
	if err := os.WriteFile(file, []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(src, 0o755)
	before := snapshot(t, stage)
	binds := []Bind{
		{Source: src, Target: "/run/vmdb2-grub"},
		{Source: file, Target: "/dev/disk/by-uuid/1234", ReadOnly: true},
		{Source: file, Target: "/usr/sbin/grub-probe", ReadOnly: true},
	}
	for _, p := range []string{"/run/vmdb2-grub/f", "/dev/disk/by-uuid/1234", "/usr/sbin/grub-probe"} {
		if out := mustRun(t, Cmd{Root: stage, Virtual: true, Binds: binds, Argv: []string{"/nsprobe", "cat", p}}); out != "from host" {
			t.Errorf("%s inside: %q", p, out)
		}
	}
	sameTree(t, before, snapshot(t, stage))
}

// TestFlushesAreFree checks that commands in the namespace run with the
// filter that turns fsync and fdatasync into successes (they fail with
// EINVAL on a pipe otherwise), for the build's speed.
func TestFlushesAreFree(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	if out := mustRun(t, Cmd{Root: stage, Argv: []string{"/nsprobe", "fsync-pipe"}}); out != "fsync=<nil> fdatasync=<nil>\n" {
		t.Errorf("fsync of a pipe in the namespace: %q, want both to succeed", out)
	}
}

func TestExitStatus(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	_, err := run(t, Cmd{Root: stage, Argv: []string{"/nsprobe", "exit", "7"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit 7: %v", err)
	}
	_, err = run(t, Cmd{Helper: "test.fail"})
	if !errors.As(err, &ee) || ee.Message != "boom" || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing helper: %v", err)
	}
	_, err = run(t, Cmd{Root: stage, Argv: []string{"no-such-program"}})
	if err == nil || !strings.Contains(err.Error(), "no-such-program") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing program: %v", err)
	}
	_, err = run(t, Cmd{Root: stage, Dir: "/no/such/dir", Argv: []string{"/nsprobe", "id"}})
	if err == nil || !strings.Contains(err.Error(), "/no/such/dir") {
		t.Errorf("missing working directory: %v", err)
	}
	// Killed by a signal.
	_, err = run(t, Cmd{Argv: []string{"sh", "-c", "kill -9 $$"}})
	if !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Errorf("killed: %v", err)
	}
}

// readyWriter signals on ready when the output contains "ready".
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "ready") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func TestNoProcessSurvives(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	hostBefore := hostMounts(t)
	stageBefore := snapshot(t, stage)
	w := watchNS(t)

	check := func(t *testing.T) {
		t.Helper()
		if pids := members(w.last(t)); len(pids) > 0 {
			t.Errorf("processes of the namespace survived: %v", pids)
		}
		if after := hostMounts(t); after != hostBefore {
			t.Errorf("host mount table changed:\n%s", after)
		}
		// Also after SIGKILL, policy-rc.d and mount points are gone.
		sameTree(t, stageBefore, snapshot(t, stage))
	}

	t.Run("success", func(t *testing.T) {
		mustRun(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "spawn-exit", "0"}})
		check(t)
	})
	t.Run("failure", func(t *testing.T) {
		_, err := run(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "spawn-exit", "3"}})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 3 {
			t.Errorf("want exit status 3, got %v", err)
		}
		check(t)
	})
	cancelCase := func(t *testing.T, argv []string, grace time.Duration, minMembers int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rw := &readyWriter{ready: make(chan struct{})}
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Cmd{Root: stage, Virtual: true, Argv: argv, Stdout: rw, GracePeriod: grace})
		}()
		if argv[1] == "sleep" {
			time.Sleep(300 * time.Millisecond)
		} else {
			select {
			case <-rw.ready:
			case err := <-done:
				t.Fatalf("ended early: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("never ready")
			}
		}
		if pids := members(w.last(t)); len(pids) < minMembers {
			t.Errorf("%d processes in the namespace before cancelling (%v), want >= %d", len(pids), pids, minMembers)
		}
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run after cancel: %v", err)
			}
			t.Logf("Run returned %v after cancel", time.Since(start).Round(time.Millisecond))
			if d := time.Since(start); d > grace+3*time.Second {
				t.Errorf("Run took %v to return after cancel (grace %v)", d, grace)
			}
		case <-time.After(grace + 20*time.Second):
			t.Fatal("Run did not return after cancel")
		}
		check(t)
	}
	t.Run("cancel sleep 1000", func(t *testing.T) {
		cancelCase(t, []string{"/nsprobe", "sleep", "1000"}, 5*time.Second, 2)
	})
	t.Run("cancel with daemons", func(t *testing.T) {
		cancelCase(t, []string{"/nsprobe", "spawn"}, 5*time.Second, 4)
	})
	t.Run("cancel SIGTERM ignored", func(t *testing.T) {
		cancelCase(t, []string{"/nsprobe", "ignore-term"}, 300*time.Millisecond, 2)
	})
}

// TestKilledCaller kills (SIGKILL) a process that is in the middle of a Run
// and checks that every process of its namespace dies too.
func TestKilledCaller(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envCaller+"="+stage)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var link string
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(20 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the caller ended early")
			}
			if pid, ok := strings.CutPrefix(l, "init "); ok {
				if link, err = os.Readlink("/proc/" + pid + "/ns/pid"); err != nil {
					t.Fatal(err)
				}
			}
			if l == "ready" {
				break wait
			}
		case <-timeout:
			t.Fatal("the caller never got ready")
		}
	}
	if n := len(members(link)); n < 4 {
		t.Fatalf("%d processes in the namespace, want >= 4", n)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	defer func() {
		t.Logf("namespace gone %v after its caller was killed", time.Since(killed).Round(time.Millisecond))
	}()
	// The namespace's init stays a zombie until the host's PID 1 reaps
	// it, which is not this package's business: count the living only.
	deadline := time.Now().Add(2 * time.Second)
	for len(living(members(link))) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the namespace survived their caller: %v", living(members(link)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCannotEscapeStage(t *testing.T) {
	needNS(t)
	const canary = "/host-canary"
	if fileExists(canary) {
		t.Fatalf("%s exists before the test", canary)
	}
	stage := newStage(t)
	out, err := run(t, Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "escape"}})
	t.Logf("escape attempts (err %v):\n%s", err, out)
	if fileExists(canary) {
		os.Remove(canary)
		t.Fatalf("a process in the stage wrote %s on the host", canary)
	}
	if !fileExists(filepath.Join(stage, "host-canary")) {
		t.Errorf("the writes did not land in the stage either")
	}
	// The namespace's root may leave a chroot: the trick reaches the
	// stage's own parent directory, and no further.
	if !fileExists(filepath.Join(filepath.Dir(stage), "host-canary")) {
		t.Errorf("the write after the chroot trick did not land in the stage's parent directory")
	}
}

// TestRootHasNoMountLine: in a Root whose parent is the caller's own, "/"
// is no mount point: /proc/self/mountinfo has no line for it, so the
// target's findmnt cannot name the build host's device as the source of
// "/" (raspi-firmware writes that into cmdline.txt). Root's parent, where
// a chroot escape lands, is the caller's: a parent others may write to
// gets "/" as a mount of its own instead.
func TestRootHasNoMountLine(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	lines := func(root string) []string {
		t.Helper()
		out := mustRun(t, Cmd{Root: root, Virtual: true, Argv: []string{"/nsprobe", "cat", "/proc/self/mountinfo"}})
		var points []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				points = append(points, f[4])
			}
		}
		return points
	}
	points := lines(stage)
	if slices.Contains(points, "/") {
		t.Errorf("mountinfo in the stage has a line for /: %q", points)
	}
	if !slices.Contains(points, "/proc") {
		t.Errorf("mountinfo in the stage lacks /proc (the test reads nothing): %q", points)
	}
	holder := filepath.Dir(stage)
	if err := os.Chmod(holder, 0o777); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(holder, 0o700)
	if points := lines(stage); !slices.Contains(points, "/") {
		t.Errorf("with a parent others may write to, / is not a mount of its own: %q", points)
	}
}

func TestRemoveAll(t *testing.T) {
	needNS(t)
	stage := newStage(t)
	mustRun(t, Cmd{Root: stage, Argv: []string{"/nsprobe", "mktree"}})
	tree := filepath.Join(stage, "tree")
	fi, err := os.Lstat(filepath.Join(tree, "a/b/f1000"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid == os.Getuid() && os.Geteuid() != 0 {
		t.Fatalf("mktree made files owned by the caller (%d): the test proves nothing", uid)
	}
	if err := RemoveAll(tree); err != nil {
		t.Fatal(err)
	}
	if fileExists(tree) {
		t.Errorf("%s still exists", tree)
	}
	if err := RemoveAll(tree); err != nil {
		t.Errorf("RemoveAll of a missing path: %v", err)
	}
}

// TestAsOrdinaryUser re-runs the namespace tests as an ordinary user with
// subordinate ids, and checks Available's explanation for one without.
func TestAsOrdinaryUser(t *testing.T) {
	if testing.Short() {
		t.Skip("uses namespaces: skipped with -short")
	}
	testreq.NeedRoot(t, "to create the test users and run the tests as them")
	needNS(t)
	const user, nosub = "vmdb2-test", "vmdb2-nosub"
	ensureUser(t, user, true)
	ensureUser(t, nosub, false)

	dir := sharedTmp(t)
	bin := filepath.Join(dir, "userns.test")
	if b, err := exec.Command(goTool(), "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, b)
	}
	prb := probe(t)

	runAs := func(user string, env []string, pattern string) (string, error) {
		args := []string{"--reuid=" + user, "--regid=" + user, "--init-groups", "--",
			"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/", "TMPDIR=/tmp", "USER=" + user}
		args = append(args, env...)
		args = append(args, bin, "-test.v", "-test.count=1", "-test.timeout=10m", "-test.run", pattern)
		cmd := exec.Command("setpriv", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	tests := []string{"TestAvailable", "TestInsideIsRoot", "TestOwnersMapToHost", "TestVirtualFilesystems",
		"TestVirtualMissingMountPoints", "TestBinds", "TestExitStatus", "TestNoProcessSurvives", "TestKilledCaller",
		"TestCannotEscapeStage", "TestRemoveAll", "TestHostileMountPoints", "TestHostilePolicyRcD", "TestHostileResolvConf",
		"TestHostileBinds", "TestHostileMagicLinks", "TestHostileRootSwap", "TestRemoveAllKeepsLinkTargets", "TestNoHostDescriptors", "TestHostileWorkingDir", "TestBindsOnNamespaceMounts",
		"TestMountPointsLookMounted", "TestHostileMountPointsSelfBind", "TestKeepMounts", "TestKeepMountsOnFailure"}
	out, err := runAs(user, []string{envProbe + "=" + prb}, "^("+strings.Join(tests, "|")+")$")
	t.Logf("as %s:\n%s", user, out)
	if err != nil {
		t.Fatalf("tests as %s failed: %v", user, err)
	}
	for _, name := range tests {
		if !strings.Contains(out, "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass as %s", name, user)
		}
	}
	if strings.Contains(out, "--- SKIP") {
		t.Errorf("tests were skipped as %s", user)
	}

	out, err = runAs(nosub, []string{envNoSub + "=1"}, "^TestUnavailableUser$")
	t.Logf("as %s:\n%s", nosub, out)
	if err != nil || !strings.Contains(out, "--- PASS: TestUnavailableUser ") {
		t.Fatalf("TestUnavailableUser as %s: %v", nosub, err)
	}
}

// ensureUser creates user if needed and checks that it has (or lacks)
// subordinate ids.
func ensureUser(t *testing.T, user string, withSub bool) {
	t.Helper()
	if err := exec.Command("id", user).Run(); err != nil {
		args := []string{"-m", user}
		if !withSub {
			args = []string{"-M", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", user}
		}
		if b, err := exec.Command("useradd", args...).CombinedOutput(); err != nil {
			t.Fatalf("useradd %v: %v\n%s", args, err, b)
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		has := false
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			p := strings.Split(sc.Text(), ":")
			if len(p) == 3 && p[0] == user {
				if n, _ := strconv.Atoi(p[2]); n >= 65536 {
					has = true
				}
			}
		}
		if has != withSub {
			t.Fatalf("%s: user %s has a 65536-id range: %v, want %v", f, user, has, withSub)
		}
	}
}

// TestUnavailableUser runs (through TestAsOrdinaryUser) as a user without
// subordinate ids.
func TestUnavailableUser(t *testing.T) {
	if os.Getenv(envNoSub) == "" {
		t.Skip("run by TestAsOrdinaryUser as a user without /etc/subuid entries")
	}
	err := Available()
	t.Logf("Available: %v", err)
	if err == nil {
		t.Fatal("Available() = nil for a user without subordinate ids")
	}
	for _, want := range []string{"/etc/subuid", "/etc/subgid", "vmdb2-nosub:", "usermod --add-subuids"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Available() does not mention %q", want)
		}
	}
	err = Run(context.Background(), Cmd{Argv: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "/etc/subuid") {
		t.Errorf("Run: %v", err)
	}
	if err := RemoveAll(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("RemoveAll of a missing path: %v", err)
	}
}

// BenchmarkRunTrue measures one Run of /bin/true without a root, and of a
// static program in a stage with the virtual filesystems.
func BenchmarkRunTrue(b *testing.B) {
	testreq.Need(b, testreq.Userns, Available())
	b.Run("host", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := Run(context.Background(), Cmd{Argv: []string{"/bin/true"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stage-virtual", func(b *testing.B) {
		dir := b.TempDir()
		src := os.Getenv(envProbe)
		if src == "" {
			src = filepath.Join(dir, "nsprobe-bin")
			cmd := exec.Command(goTool(), "build", "-o", src, "./testdata/nsprobe")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v\n%s", err, out)
			}
		}
		stage := filepath.Join(dir, "stage")
		os.MkdirAll(filepath.Join(stage, "usr/sbin"), 0o755)
		data, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stage, "nsprobe"), data, 0o755); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := Run(context.Background(), Cmd{Root: stage, Virtual: true, Argv: []string{"/nsprobe", "exit", "0"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
