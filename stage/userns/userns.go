package userns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Cmd describes one process to run inside a new set of namespaces.
type Cmd struct {
	// Root is the stage directory the process is confined to: it becomes
	// "/", a directory of the namespace's only other mount, a copy of
	// Root's parent directory, so "/" is no mount point (see enterRoot).
	// A process that escapes the chroot reaches that parent directory:
	// give Root a parent that holds nothing else the command may not
	// change. "" means no confinement: the host's files are visible, as
	// the namespace's root sees them (used for the vmdb2 `shell` step and
	// for mke2fs over the stage).
	Root string

	// Argv is the program and its arguments. A program name without "/" is
	// looked up in the PATH of Env (inside Root when it is set).
	Argv []string

	// Helper names a Go function registered with [RegisterHelper] to run
	// instead of Argv (exactly one of Argv and Helper must be set), with
	// HelperArgs as its argument. It runs as the namespace's PID 1, after
	// the confinement and mounts, with Env as its environment, Dir as its
	// working directory and Stdin/Stdout/Stderr as os.Stdin/Stdout/Stderr.
	Helper     string
	HelperArgs []string

	// Env is the environment of the process. nil means the environment of
	// the calling process (as with os/exec).
	Env []string

	// Dir is the working directory, inside Root when it is set. "" means
	// "/" with a Root, else the caller's working directory.
	Dir string

	// Stdin, Stdout and Stderr are connected as with os/exec: nil means
	// /dev/null; an *os.File is passed on directly.
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Virtual, which needs Root, mounts inside the namespace only: proc on
	// /proc; a tmpfs on /dev holding bind mounts of the host's null, zero,
	// full, random, urandom and tty, a fresh devpts on /dev/pts with
	// /dev/ptmx, a tmpfs /dev/shm and the usual /dev/fd, stdin, stdout and
	// stderr links; a read-only recursive bind of /sys; tmpfs on /run and
	// /tmp; the host's /etc/resolv.conf content lent to the stage's for
	// the command (when the stage has one; see resolv.go); and a /usr/sbin/policy-rc.d that exits 101,
	// so that packages start no services (when the stage has /usr/sbin and
	// no policy-rc.d of its own).
	//
	// The stage is left as it was found: anything created on it to serve
	// as a mount point or as policy-rc.d is removed once every process of
	// the namespace is gone, even when the run was cancelled.
	Virtual bool

	// Binds are extra bind mounts made inside the namespace, after the
	// Virtual ones.
	Binds []Bind

	// Tree is the host path of the build's tree (the root filesystem's
	// staging directory) whose MountPoints are shown mounted and in which
	// Carry's mounts are attached; with a Root it must be Root.
	Tree string

	// MountPoints are directories of Tree (image paths, parents before
	// their children), each bind-mounted onto itself in the namespace
	// before the other mounts, so that the target's programs see the
	// build's filesystems mounted (mountpoint, findmnt,
	// /proc/self/mountinfo) as on a build that mounts real ones. "/" is
	// Tree itself, bound onto itself without a Root and left as it is
	// with one (a plain directory, see Root). Each is resolved
	// beneath Tree with no symbolic link on the way: a link there (which
	// could lead the bind out of the tree) makes Run fail.
	MountPoints []string

	// Carry, which needs a Tree, holds mounts that earlier commands left
	// in the tree: they are attached at their image paths after the
	// mount points, the Virtual ones and Binds.
	Carry *Carry

	// KeepMounts, which needs Carry, a Tree and no Root, makes Carry hold,
	// once the command ended (whatever its status), the mounts then in
	// Tree that the namespace's setup did not make: those carried in and
	// not unmounted, and those the command made. A mount over Tree's "/"
	// itself is not kept.
	KeepMounts bool

	// Hostname is the host name inside the namespace; "" means "localhost",
	// which every Debian tree resolves.
	Hostname string

	// GracePeriod is how long Run waits, after the context is done and
	// SIGTERM was sent to every process of the namespace, before killing
	// them all with SIGKILL. Zero means 5 seconds.
	GracePeriod time.Duration
}

// Bind is a bind mount made inside the namespace only.
type Bind struct {
	// Source is a host path (a directory or a file).
	Source string
	// Target is where it appears: a path inside Root when Root is set
	// (e.g. "/var/cache/apt/archives"), resolved inside it as the package
	// doc says, else a host path. With a Root, a missing Target is
	// created (and removed afterwards); without one it must exist.
	Target string
	// ReadOnly makes the bind mount read-only.
	ReadOnly bool
}

// ExitError is returned by Run when the process ran and exited unsuccessfully.
type ExitError struct {
	// What names the program or helper, for messages.
	What string
	// Code is the exit status, or -1 when the process was killed by a
	// signal.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
	// Message is the error returned by a helper, or "".
	Message string
}

func (e *ExitError) Error() string {
	switch {
	case e.Message != "":
		return fmt.Sprintf("%s: %s", e.What, e.Message)
	case e.Signal != 0:
		return fmt.Sprintf("%s was killed by signal %d (%v)", e.What, int(e.Signal), e.Signal)
	default:
		return fmt.Sprintf("%s exited with status %d", e.What, e.Code)
	}
}

// ExitCode returns the exit status, or -1 if the process was killed by a
// signal.
func (e *ExitError) ExitCode() int { return e.Code }

var (
	helpersMu sync.Mutex
	helpers   = map[string]func(args []string) error{}
	dupHelper = map[string]bool{}
)

// RegisterHelper registers fn under name so that Cmd.Helper can run it
// inside a namespace. Call it from an init function (or before the first
// Run): the re-executed binary must register the same helpers before [Init]
// runs them. Registering a name twice makes every Run of that helper fail.
func RegisterHelper(name string, fn func(args []string) error) {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	if _, ok := helpers[name]; ok || fn == nil {
		dupHelper[name] = true
	}
	helpers[name] = fn
}

func lookupHelper(name string) (func([]string) error, error) {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	if dupHelper[name] {
		return nil, fmt.Errorf("userns: helper %q was registered twice or with a nil function", name)
	}
	fn, ok := helpers[name]
	if !ok {
		return nil, fmt.Errorf("userns: no helper %q is registered (RegisterHelper must run at init time)", name)
	}
	return fn, nil
}

// testHookStarted, when set by tests, is called with the host pid of the
// namespace's PID 1 as soon as it has started.
var testHookStarted func(pid int)

const defaultGrace = 5 * time.Second

// Run runs c inside new user, mount, PID, UTS and IPC namespaces and waits
// for it and for every other process of the namespace to end.
//
// It returns nil if the program (or helper) succeeded; an *ExitError if it
// exited with a non-zero status, was killed by a signal or (for a helper)
// returned an error; an error wrapping ctx.Err() if ctx was done first (the
// namespace's processes then got SIGTERM and, after c.GracePeriod, SIGKILL);
// other errors when the namespace could not be set up.
//
// [Init] must have been called at the start of main.
func Run(ctx context.Context, c Cmd) (err error) {
	what := describe(c)
	if ctx == nil {
		return fmt.Errorf("userns: cannot run %s: nil context", what)
	}
	if !initCalled.Load() {
		return fmt.Errorf("userns: cannot run %s: userns.Init was not called at the start of main (or TestMain)", what)
	}
	cfg, err := c.config()
	if err != nil {
		return fmt.Errorf("userns: cannot run %s: %w", what, err)
	}
	m, err := Mapping()
	if err != nil {
		return err
	}
	root, err := openRoot(&cfg)
	if err != nil {
		return fmt.Errorf("userns: cannot run %s: %w", what, err)
	}
	if root != nil {
		defer root.Close()
	}

	p, err := openInitPipes()
	if err != nil {
		return fmt.Errorf("userns: %w", err)
	}
	defer p.close()
	cmd := initCommand(ctx, c, m, p)

	// The namespace's PID 1 asks for SIGKILL when the thread that forked
	// it ends (PR_SET_PDEATHSIG is per thread), so keep this goroutine on
	// one thread until the namespace is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("userns: starting %s: %w", what, err)
	}
	p.statW.Close()
	p.cfgR.Close()
	p.syncR.Close()
	p.carryChild.Close()
	if testHookStarted != nil {
		testHookStarted(cmd.Process.Pid)
	}
	reports, lent, setupErr, waitErr := superviseInit(cmd, p, cfg, c, m, what)

	final, cleanup := splitReports(reports)
	cleanErr := undo(root, cleanup)
	<-lent
	if err := keepMounts(c, final, p.carryHost, what); err != nil {
		cleanErr = errors.Join(cleanErr, err)
	}
	err = runError(ctx, what, setupErr, waitErr, final)
	if cleanErr != nil {
		err = errors.Join(err, cleanErr)
	}
	return err
}

// superviseInit talks to the namespace's init until it has ended: it sends
// the config, lends the carried mounts, writes the id maps when they are
// not direct, gives the go-ahead, and collects init's reports. lent is
// closed once the lending is over.
func superviseInit(cmd *exec.Cmd, p *initPipes, cfg config, c Cmd, m IDMapping, what string) (reports []report, lent chan struct{}, setupErr, waitErr error) {
	// Read the child's reports until every holder of statW is gone.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		reports = readReports(p.statR)
	}()
	// The config may exceed a pipe's buffer; the child reads it only once
	// it is in its namespace, so write it concurrently.
	go func() {
		_ = json.NewEncoder(p.cfgW).Encode(cfg)
		p.cfgW.Close()
	}()

	lent = make(chan struct{})
	if len(cfg.Carried) > 0 {
		go func() {
			defer close(lent)
			c.Carry.lend(int(p.carryHost.Fd()), cfg.Carried)
		}()
	} else {
		close(lent)
	}
	if !m.Direct {
		setupErr = writeMaps(cmd.Process.Pid, m)
	}
	if setupErr != nil {
		_ = cmd.Process.Kill()
	} else if _, err := p.syncW.Write([]byte{1}); err != nil {
		setupErr = fmt.Errorf("userns: starting %s: the namespace's init died before its setup: %w", what, err)
	}
	waitErr = cmd.Wait()
	p.syncW.Close()
	p.cfgW.Close()
	<-readDone
	return reports, lent, setupErr, waitErr
}

// keepMounts takes back, for a KeepMounts command, the mounts init kept
// and puts them in c's Carry.
func keepMounts(c Cmd, final *report, carryHost *os.File, what string) error {
	var err error
	if final != nil && final.Kept && c.KeepMounts {
		kept, rerr := receiveKept(int(carryHost.Fd()))
		if rerr != nil {
			err = fmt.Errorf("userns: %s: %w", what, rerr)
		} else {
			c.Carry.replace(kept)
		}
	}
	if final != nil && final.KeepError != "" {
		err = errors.Join(err, fmt.Errorf("userns: %s: keeping its mounts: %s", what, final.KeepError))
	}
	return err
}

// initPipes are the channels between Run and the namespace's init: the
// config (fd 3 in the child), the go-ahead once the id maps are written,
// which doubles as the lifeline the child checks is still open (fd 4),
// the child's reports (fd 5) and the socket that lends and returns kept
// mounts (fd 6).
type initPipes struct {
	cfgR, cfgW, syncR, syncW, statR, statW, carryHost, carryChild *os.File
}

func openInitPipes() (*initPipes, error) {
	p := &initPipes{}
	var err error
	if p.cfgR, p.cfgW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.syncR, p.syncW, err = os.Pipe(); err == nil {
		if p.statR, p.statW, err = os.Pipe(); err == nil {
			p.carryHost, p.carryChild, err = carrySockets()
		}
	}
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// close closes every end still open (Run closes the child's ends once the
// child has started).
func (p *initPipes) close() {
	for _, f := range []*os.File{p.cfgR, p.cfgW, p.syncR, p.syncW, p.statR, p.statW, p.carryHost, p.carryChild} {
		if f != nil {
			f.Close()
		}
	}
}

// initCommand is the namespace's init for c: this binary re-executed in
// new namespaces, with the id maps set by the kernel when the mapping is
// direct (else Run writes them with newuidmap and newgidmap, and init waits
// for them), SIGTERM on cancellation and SIGKILL after the grace period.
func initCommand(ctx context.Context, c Cmd, m IDMapping, p *initPipes) *exec.Cmd {
	stage := stageSetup
	if !m.Direct {
		stage = stageWait
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{initArgv0}
	cmd.Env = initEnv(stage)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.ExtraFiles = []*os.File{p.cfgR, p.syncR, p.statW, p.carryChild} // fds 3, 4, 5, 6
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
	}
	if m.Direct {
		cmd.SysProcAttr.UidMappings = sysMaps(m.UIDs)
		cmd.SysProcAttr.GidMappings = sysMaps(m.GIDs)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = c.GracePeriod
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = defaultGrace
	}
	return cmd
}

// readReports reads the child's JSON reports, one per line, until every
// writer of r is gone.
func readReports(r io.Reader) []report {
	var reports []report
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rep report
		if json.Unmarshal(sc.Bytes(), &rep) == nil {
			reports = append(reports, rep)
		}
	}
	return reports
}

// splitReports separates init's final report (the last marked Done) from
// the changes to the stage it reported, which Run undoes.
func splitReports(reports []report) (final *report, cleanup []report) {
	for i := range reports {
		if reports[i].Done {
			final = &reports[i]
		} else {
			cleanup = append(cleanup, reports[i])
		}
	}
	return final, cleanup
}

// runError is Run's result from how the namespace ended.
func runError(ctx context.Context, what string, setupErr, waitErr error, final *report) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("userns: %s stopped: %w", what, ctx.Err())
	case setupErr != nil:
		return setupErr
	case final == nil:
		return fmt.Errorf("userns: %s: the namespace's init ended without a report: %v", what, waitErr)
	case final.SetupError != "":
		return fmt.Errorf("userns: setting up the namespace for %s: %s", what, final.SetupError)
	case final.HelperError != "":
		return &ExitError{What: what, Code: 1, Message: final.HelperError}
	case final.Signal != 0:
		return &ExitError{What: what, Code: -1, Signal: syscall.Signal(final.Signal)}
	case final.Exit != 0:
		return &ExitError{What: what, Code: final.Exit}
	}
	return nil
}

func sysMaps(rs []IDRange) []syscall.SysProcIDMap {
	var out []syscall.SysProcIDMap
	for _, r := range rs {
		out = append(out, syscall.SysProcIDMap{ContainerID: r.Inside, HostID: r.Host, Size: r.Size})
	}
	return out
}

// writeMaps writes the child's uid and gid maps with newuidmap/newgidmap.
func writeMaps(pid int, m IDMapping) error {
	for _, t := range []struct {
		tool string
		rs   []IDRange
	}{{"newuidmap", m.UIDs}, {"newgidmap", m.GIDs}} {
		path, err := lookPathHost(t.tool)
		if err != nil {
			return fmt.Errorf("userns: %w (install the uidmap package)", err)
		}
		args := []string{fmt.Sprint(pid)}
		for _, r := range t.rs {
			args = append(args, fmt.Sprint(r.Inside), fmt.Sprint(r.Host), fmt.Sprint(r.Size))
		}
		out, err := exec.Command(path, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("userns: %s %s: %w: %s", path, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func describe(c Cmd) string {
	if c.Helper != "" {
		return fmt.Sprintf("helper %q", c.Helper)
	}
	if len(c.Argv) > 0 {
		return fmt.Sprintf("%q", c.Argv[0])
	}
	return "command"
}

// config checks c and turns it into what the child needs.
func (c Cmd) config() (config, error) {
	cfg := config{
		Argv: c.Argv, Helper: c.Helper, HelperArgs: c.HelperArgs,
		Env: c.Env, Dir: c.Dir, Virtual: c.Virtual, Hostname: c.Hostname,
	}
	if (len(c.Argv) == 0) == (c.Helper == "") {
		return cfg, errors.New("exactly one of Argv and Helper must be set")
	}
	if c.Helper != "" {
		if _, err := lookupHelper(c.Helper); err != nil {
			return cfg, err
		}
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	cfg.Env = withoutInternal(cfg.Env)
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if err := c.rootConfig(&cfg); err != nil {
		return cfg, err
	}
	if err := c.treeConfig(&cfg); err != nil {
		return cfg, err
	}
	if err := c.bindConfig(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// rootConfig checks Root (a directory, never the host's /, its symlinks
// resolved) and sets the working directory's default: the root's / or,
// without a root, the caller's own.
func (c Cmd) rootConfig(cfg *config) error {
	if c.Root == "" {
		if c.Virtual {
			return errors.New("Virtual needs a Root")
		}
		if cfg.Dir == "" {
			wd, err := os.Getwd()
			if err != nil {
				return fmt.Errorf("working directory: %w", err)
			}
			cfg.Dir = wd
		}
		return nil
	}
	root, err := resolvedPath(c.Root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("root %s is not a directory", root)
	}
	if root == "/" {
		return errors.New("root must not be the host's /")
	}
	cfg.Root = root
	if cfg.Dir == "" {
		cfg.Dir = "/"
	}
	return nil
}

// bindConfig checks Binds: each source must exist, each target be
// absolute (or relative to a Root).
func (c Cmd) bindConfig(cfg *config) error {
	for _, b := range c.Binds {
		src, err := filepath.Abs(b.Source)
		if err != nil {
			return fmt.Errorf("bind %s: %w", b.Source, err)
		}
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		if !filepath.IsAbs(b.Target) && (cfg.Root == "" || b.Target == "") {
			return fmt.Errorf("bind target %q must be an absolute path", b.Target)
		}
		cfg.Binds = append(cfg.Binds, Bind{Source: src, Target: filepath.Join("/", b.Target), ReadOnly: b.ReadOnly})
	}
	return nil
}

// resolvedPath is p made absolute, its symbolic links resolved: the path
// the child will find.
func resolvedPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// treeConfig checks Tree, MountPoints, Carry and KeepMounts.
func (c Cmd) treeConfig(cfg *config) error {
	if c.Tree == "" {
		if len(c.MountPoints) > 0 || c.Carry != nil {
			return errors.New("MountPoints and Carry need a Tree")
		}
		return nil
	}
	tree, err := resolvedPath(c.Tree)
	if err != nil {
		return fmt.Errorf("tree: %w", err)
	}
	if cfg.Root != "" && tree != cfg.Root {
		return fmt.Errorf("tree %s is not the root %s", tree, cfg.Root)
	}
	if tree == "/" {
		return errors.New("tree must not be the host's /")
	}
	if c.KeepMounts && (c.Carry == nil || cfg.Root != "") {
		return errors.New("KeepMounts needs a Carry and no Root")
	}
	cfg.Tree, cfg.KeepMounts = tree, c.KeepMounts
	for _, p := range c.MountPoints {
		cfg.MountPoints = append(cfg.MountPoints, path.Clean("/"+p))
	}
	cfg.Carried = c.Carry.infos()
	return nil
}

// carrySockets is the socket pair on which carried mounts' descriptors go
// to the namespace's init and kept ones come back (fd 6 there).
func carrySockets() (host, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "carry"), os.NewFile(uintptr(fds[1]), "carry"), nil
}

// openRoot opens the stage directory cfg.Root, once: the namespace's init
// checks that its own path still leads there, and the stage is restored
// through this descriptor afterwards, whatever happens to the path.
func openRoot(cfg *config) (*os.File, error) {
	if cfg.Root == "" {
		return nil, nil
	}
	fd, err := unix.Open(cfg.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	f := os.NewFile(uintptr(fd), cfg.Root)
	var st, host unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("root: %w", err)
	}
	if err := unix.Stat("/", &host); err == nil && st.Dev == host.Dev && st.Ino == host.Ino {
		f.Close()
		return nil, errors.New("root must not be the host's /")
	}
	cfg.RootDev, cfg.RootIno = st.Dev, st.Ino
	return f, nil
}

func withoutInternal(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, envStage+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// initCalled is set by Init in the calling (host-side) process.
var initCalled atomic.Bool
