package userns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Init must be the first call in main, and in TestMain of every test package
// whose tests use this package:
//
//	func main() {
//		userns.Init()
//		...
//	}
//
// In an ordinary start it only records that it was called and returns. In a
// process that Run started (the binary re-executed inside the namespaces),
// it performs the in-namespace setup, runs the command or helper as the
// namespace's PID 1 and exits: it never returns there. Flags, logging and
// anything else main does must come after it.
func Init() {
	stage, ok := os.LookupEnv(envStage)
	if !ok {
		initCalled.Store(true)
		return
	}
	os.Unsetenv(envStage)
	switch stage {
	case stageWait:
		os.Exit(waitForMaps())
	case stageSetup:
		os.Exit(runInit())
	default:
		fmt.Fprintf(os.Stderr, "userns: unknown stage %q in %s\n", stage, envStage)
		os.Exit(125)
	}
}

// waitForMaps is the unprivileged first stage: wait until Run has written the
// id maps, then re-execute this binary so that it gains the capabilities of
// the namespace's root.
func waitForMaps() int {
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	fds := []unix.PollFd{{Fd: fdSync, Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || fds[0].Revents&unix.POLLIN == 0 {
			return 125 // Run's process is gone
		}
		break
	}
	err := syscall.Exec("/proc/self/exe", []string{initArgv0}, []string{envStage + "=" + stageSetup})
	newReporter().final(report{SetupError: fmt.Sprintf("re-executing /proc/self/exe: %v", err)})
	return 125
}

// reporter writes report lines on fd 5.
type reporter struct {
	mu sync.Mutex
	f  *os.File
}

func newReporter() *reporter { return &reporter{f: os.NewFile(fdReport, "report")} }

func (r *reporter) send(rep report) {
	b, err := json.Marshal(rep)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.f.Write(append(b, '\n'))
}

func (r *reporter) final(rep report) {
	rep.Done = true
	r.send(rep)
}

// runInit is the namespace's PID 1: it sets the namespace up, runs the
// command or helper, kills whatever is left and reports. It returns the exit
// status of the init process.
func runInit() int {
	for _, fd := range []int{fdConfig, fdSync, fdReport} {
		syscall.CloseOnExec(fd)
	}
	rep := newReporter()

	// The sync byte says the maps are written (unprivileged) or simply that
	// Run is ready.
	var b [1]byte
	for {
		n, err := syscall.Read(fdSync, b[:])
		if err == syscall.EINTR {
			continue
		}
		if n != 1 {
			return 125
		}
		break
	}
	// Die with Run's thread. Gaining capabilities at execve cleared any
	// earlier setting, so set it here, then make sure Run did not die
	// before it took effect.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		rep.final(report{SetupError: fmt.Sprintf("prctl(PR_SET_PDEATHSIG): %v", err)})
		return 125
	}
	fds := []unix.PollFd{{Fd: fdSync, Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 0); n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
		return 125
	}

	var cfg config
	cf := os.NewFile(fdConfig, "config")
	if err := json.NewDecoder(cf).Decode(&cfg); err != nil {
		rep.final(report{SetupError: fmt.Sprintf("reading the configuration: %v", err)})
		return 125
	}
	cf.Close()

	if err := setup(&cfg, rep); err != nil {
		rep.final(report{SetupError: err.Error()})
		return 125
	}
	var final report
	if cfg.Helper != "" {
		final = runHelper(&cfg)
	} else {
		final = runCommand(&cfg)
	}
	killAll()
	rep.final(final)
	switch {
	case final.SetupError != "", final.HelperError != "":
		return 1
	case final.Signal != 0:
		return 128 + final.Signal
	}
	return final.Exit
}

// killAll kills every other process of the namespace and reaps them.
func killAll() {
	_ = syscall.Kill(-1, syscall.SIGKILL)
	for {
		_, err := syscall.Wait4(-1, nil, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return // ECHILD: none left
		}
	}
}

func runHelper(cfg *config) report {
	fn, err := lookupHelper(cfg.Helper)
	if err != nil {
		return report{SetupError: err.Error()}
	}
	os.Clearenv()
	for _, kv := range cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		}
	}
	if err := fn(cfg.HelperArgs); err != nil {
		msg := err.Error()
		if msg == "" {
			msg = "failed"
		}
		return report{HelperError: msg}
	}
	return report{}
}

func runCommand(cfg *config) report {
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return report{SetupError: err.Error()}
	}
	sigc := make(chan os.Signal, 8)
	// SIGTERM and SIGHUP (from Run, on cancel) go to every process of the
	// namespace. SIGINT and SIGQUIT come from a terminal, which has already
	// sent them to the whole foreground process group: only catch them, so
	// that init outlives the command and reports its status.
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		for s := range sigc {
			if sig, ok := s.(syscall.Signal); ok && (sig == syscall.SIGTERM || sig == syscall.SIGHUP) {
				_ = syscall.Kill(-1, sig)
			}
		}
	}()
	// Best effort: without it, builds are only slower.
	_ = installNoSync()
	p, err := os.StartProcess(path, cfg.Argv, &os.ProcAttr{
		Dir:   cfg.Dir,
		Env:   cfg.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return report{SetupError: fmt.Sprintf("cannot run %s: %v", cfg.Argv[0], err)}
	}
	// Reap every child (orphans are re-parented to us) until the command
	// itself has exited.
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return report{SetupError: fmt.Sprintf("waiting for %s: %v", cfg.Argv[0], err)}
		}
		if pid != p.Pid {
			continue
		}
		if ws.Signaled() {
			return report{Signal: int(ws.Signal())}
		}
		return report{Exit: ws.ExitStatus()}
	}
}

// lookPath finds name in the PATH of env, as seen inside the namespace.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("cannot run %s: not found in PATH %s", name, path)
}

// devNodes are the host device nodes bind-mounted into /dev by Virtual.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// setup becomes the namespace's root, makes the mounts private, confines the
// process to cfg.Root with the requested mounts, and changes to cfg.Dir.
func setup(cfg *config, rep *reporter) error {
	// Become root of the namespace with no supplementary groups (the
	// caller's would show as 65534). These calls stop every thread of the
	// Go runtime, so skip those that would change nothing.
	if groups, err := syscall.Getgroups(); err != nil || len(groups) > 1 || (len(groups) == 1 && groups[0] != 0) {
		if err := syscall.Setgroups([]int{}); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
	}
	if r, e, sv := unix.Getresgid(); r|e|sv != 0 {
		if err := syscall.Setresgid(0, 0, 0); err != nil {
			return fmt.Errorf("setresgid(0): %w", err)
		}
	}
	if r, e, sv := unix.Getresuid(); r|e|sv != 0 {
		if err := syscall.Setresuid(0, 0, 0); err != nil {
			return fmt.Errorf("setresuid(0): %w", err)
		}
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("sethostname %q: %w", cfg.Hostname, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if cfg.Root == "" {
		for _, b := range cfg.Binds {
			fd, err := cloneTree(b.Source, b.ReadOnly)
			if err != nil {
				return err
			}
			err = attach(fd, b.Target)
			unix.Close(fd)
			if err != nil {
				return err
			}
		}
	} else if err := confine(cfg, rep); err != nil {
		return err
	}
	if err := os.Chdir(cfg.Dir); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	return nil
}

// cloneTree returns a detached copy of the mount tree at path (a bind
// mount, recursive), read-only if ro.
func cloneTree(path string, ro bool) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("bind-mounting %s: %w", path, err)
	}
	if ro {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("making the bind mount of %s read-only: %w", path, err)
		}
	}
	return fd, nil
}

// attach mounts the detached tree fd on target.
func attach(fd int, target string) error {
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting on %s: %w", target, err)
	}
	return nil
}

// prepared holds the mounts made while the host's tree is still visible.
type prepared struct {
	proc   int
	sys    int
	dev    map[string]int
	resolv []byte // the host's /etc/resolv.conf; nil if it has none
	binds  []int
}

func (p *prepared) close() {
	for _, fd := range append([]int{p.proc, p.sys}, p.binds...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	for _, fd := range p.dev {
		unix.Close(fd)
	}
}

func confine(cfg *config, rep *reporter) (err error) {
	pre := &prepared{proc: -1, sys: -1, dev: map[string]int{}}
	defer pre.close()
	if cfg.Virtual {
		// proc can only be mounted while a full proc is visible in the
		// mount namespace, so create it now and attach it later.
		if pre.proc, err = newMount("proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC); err != nil {
			return err
		}
		// A fresh sysfs would need a network namespace of our own.
		if pre.sys, err = cloneTree("/sys", true); err != nil {
			return err
		}
		for _, n := range devNodes {
			fd, err := unix.OpenTree(unix.AT_FDCWD, "/dev/"+n, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err != nil {
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) {
					continue
				}
				return fmt.Errorf("bind-mounting /dev/%s: %w", n, err)
			}
			pre.dev[n] = fd
		}
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			pre.resolv = b
		}
	}
	for _, b := range cfg.Binds {
		fd, err := cloneTree(b.Source, b.ReadOnly)
		if err != nil {
			return err
		}
		pre.binds = append(pre.binds, fd)
	}

	// Make the stage a mount point and pivot into it; the host's tree is
	// then detached and unreachable from the namespace.
	if err := unix.Mount(cfg.Root, cfg.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting the stage %s: %w", cfg.Root, err)
	}
	if err := unix.Chdir(cfg.Root); err != nil {
		return fmt.Errorf("entering the stage: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", cfg.Root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's tree: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}

	st := &stageFS{rep: rep}
	if err := st.init(); err != nil {
		return err
	}
	if cfg.Virtual {
		if err := st.virtual(pre); err != nil {
			return err
		}
	}
	for i, b := range cfg.Binds {
		// Source is a host path, no longer visible: ask the clone.
		isDir := true
		var sx unix.Statx_t
		if err := unix.Statx(pre.binds[i], "", unix.AT_EMPTY_PATH, unix.STATX_TYPE, &sx); err == nil {
			isDir = sx.Mode&unix.S_IFMT == unix.S_IFDIR
		}
		target, err := st.ensure(b.Target, isDir)
		if err != nil {
			return fmt.Errorf("bind mount target: %w", err)
		}
		if err := attach(pre.binds[i], target); err != nil {
			return err
		}
	}
	return nil
}

// newMount creates a detached mount of a new filesystem of type fstype.
func newMount(fstype string, opts map[string]string, attrs int) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("mounting %s: fsopen: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	for k, v := range opts {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return -1, fmt.Errorf("mounting %s: option %s=%s: %w", fstype, k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("mounting %s: %w", fstype, err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, fmt.Errorf("mounting %s: fsmount: %w", fstype, err)
	}
	return fd, nil
}

// stageFS creates files and directories on the stage (after pivot_root, so
// every path resolves inside it), reporting those it creates on the stage's
// own mount so that Run can remove them afterwards.
type stageFS struct {
	rep     *reporter
	rootMnt uint64
}

func (s *stageFS) init() error {
	id, err := mountID("/")
	if err != nil {
		return err
	}
	s.rootMnt = id
	return nil
}

func mountID(path string) (uint64, error) {
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &sx); err != nil {
		return 0, fmt.Errorf("statx %s: %w", path, err)
	}
	return sx.Mnt_id, nil
}

// ensure makes sure path exists (as a directory if dir, else as a file),
// creating what is missing, and returns it with symlinks resolved.
func (s *stageFS) ensure(path string, dir bool) (string, error) {
	path = filepath.Clean("/" + path)
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real, nil
	}
	parent := filepath.Dir(path)
	if parent != path {
		p, err := s.ensure(parent, true)
		if err != nil {
			return "", err
		}
		path = filepath.Join(p, filepath.Base(path))
	}
	if _, err := os.Lstat(path); err == nil {
		// A dangling symlink: do not guess where it should go.
		return "", fmt.Errorf("%s is a dangling symbolic link", path)
	}
	if id, err := mountID(filepath.Dir(path)); err == nil && id == s.rootMnt {
		s.rep.send(report{Created: path, Dir: dir})
	}
	if dir {
		if err := os.Mkdir(path, 0o755); err != nil {
			return "", err
		}
		return path, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	return path, f.Close()
}

func (s *stageFS) tmpfs(path, opts string, flags uintptr) error {
	p, err := s.ensure(path, true)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", p, "tmpfs", flags, opts); err != nil {
		return fmt.Errorf("mounting tmpfs on %s: %w", p, err)
	}
	return nil
}

func (s *stageFS) virtual(pre *prepared) error {
	p, err := s.ensure("/proc", true)
	if err != nil {
		return err
	}
	if err := attach(pre.proc, p); err != nil {
		return err
	}
	if p, err = s.ensure("/sys", true); err != nil {
		return err
	}
	if err := attach(pre.sys, p); err != nil {
		return err
	}

	if err := s.tmpfs("/dev", "mode=755,size=4m", unix.MS_NOSUID|unix.MS_NOEXEC); err != nil {
		return err
	}
	for _, n := range devNodes {
		fd, ok := pre.dev[n]
		if !ok {
			continue
		}
		target := "/dev/" + n
		if err := os.WriteFile(target, nil, 0o666); err != nil {
			return err
		}
		if err := attach(fd, target); err != nil {
			return err
		}
	}
	if err := os.Mkdir("/dev/pts", 0o755); err != nil {
		return err
	}
	const ptsFlags = unix.MS_NOSUID | unix.MS_NOEXEC
	if err := unix.Mount("devpts", "/dev/pts", "devpts", ptsFlags, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		if err := unix.Mount("devpts", "/dev/pts", "devpts", ptsFlags, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
			return fmt.Errorf("mounting devpts on /dev/pts: %w", err)
		}
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, "/dev/"+name); err != nil {
			return err
		}
	}
	if err := s.tmpfs("/dev/shm", "mode=1777", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}
	if err := s.tmpfs("/run", "mode=755", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}
	// Mkdir applies the umask; Chmod sets the exact mode (with the sticky
	// bit, which Go spells os.ModeSticky, not 0o1000).
	if err := os.Mkdir("/run/lock", 0o755); err != nil {
		return err
	}
	if err := os.Chmod("/run/lock", os.ModeSticky|0o777); err != nil {
		return err
	}
	if err := s.tmpfs("/tmp", "mode=1777", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}

	// resolv.conf: only into one the stage has (possibly through a
	// symlink into the fresh /run, as with systemd-resolved).
	if pre.resolv != nil {
		if target, ok := s.resolvTarget(); ok {
			if err := lendResolvConf(s.rep, target, pre.resolv); err != nil {
				return err
			}
		}
	}

	// policy-rc.d: only when the stage has /usr/sbin and none of its own.
	if fi, err := os.Stat("/usr/sbin"); err == nil && fi.IsDir() {
		const path = "/usr/sbin/policy-rc.d"
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			s.rep.send(report{Created: path, Policy: true})
			if err := os.WriteFile(path, []byte(policyRcD), 0o755); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
		}
	}
	return nil
}

// resolvTarget returns the file of the stage that /etc/resolv.conf names, if
// any. A symlink into /run (now a private tmpfs) gets its target created
// there.
func (s *stageFS) resolvTarget() (string, bool) {
	const p = "/etc/resolv.conf"
	if real, err := filepath.EvalSymlinks(p); err == nil {
		fi, err := os.Stat(real)
		return real, err == nil && fi.Mode().IsRegular()
	}
	link, err := os.Readlink(p)
	if err != nil {
		return "", false
	}
	if !filepath.IsAbs(link) {
		link = filepath.Join("/etc", link)
	}
	link = filepath.Clean(link)
	if !strings.HasPrefix(link, "/run/") {
		return "", false
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", false
	}
	if err := os.WriteFile(link, nil, 0o644); err != nil {
		return "", false
	}
	return link, true
}
