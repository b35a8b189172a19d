package userns

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
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
	closeInherited()
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
	err := syscall.Exec("/proc/self/exe", []string{initArgv0}, initEnv(stageSetup))
	newReporter().final(report{SetupError: fmt.Sprintf("re-executing /proc/self/exe: %v", err)})
	return 125
}

// initEnv is the environment of the namespace's init in stage. Go's
// runtime is told not to keep the host's cgroup files open for its
// GOMAXPROCS (the command could reopen them through /proc/1/fd, as
// root writable).
func initEnv(stage string) []string {
	return []string{envStage + "=" + stage, "GODEBUG=containermaxprocs=0"}
}

// closeInherited closes the descriptors above the protocol's that the
// namespace's init inherited without close-on-exec (left open by whatever
// started the build: Go opens its own with close-on-exec). The command
// would inherit them, and could reopen any of init's through /proc/1/fd:
// none may lead to a host file.
func closeInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= fdCarry {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
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
	for _, fd := range []int{fdConfig, fdSync, fdReport, fdCarry} {
		syscall.CloseOnExec(fd)
	}
	rep := newReporter()

	if !awaitRun(rep) {
		return 125
	}
	cfg, ok := readConfig(rep)
	if !ok {
		return 125
	}
	k, err := setup(&cfg, rep)
	if err != nil {
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
	if k != nil {
		final.Kept, final.KeepError = passKept(k)
	}
	rep.final(final)
	switch {
	case final.SetupError != "", final.HelperError != "":
		return 1
	case final.Signal != 0:
		return 128 + final.Signal
	}
	return final.Exit
}

// awaitRun waits for Run's sync byte, which says the maps are written
// (unprivileged) or simply that Run is ready, and ties this process's life
// to Run's thread. False means Run is gone.
func awaitRun(rep *reporter) bool {
	var b [1]byte
	for {
		n, err := syscall.Read(fdSync, b[:])
		if err == syscall.EINTR {
			continue
		}
		if n != 1 {
			return false
		}
		break
	}
	// Die with Run's thread. Gaining capabilities at execve cleared any
	// earlier setting, so set it here, then make sure Run did not die
	// before it took effect.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		rep.final(report{SetupError: fmt.Sprintf("prctl(PR_SET_PDEATHSIG): %v", err)})
		return false
	}
	fds := []unix.PollFd{{Fd: fdSync, Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 0); n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
		return false
	}
	return true
}

// readConfig reads the configuration Run sends.
func readConfig(rep *reporter) (config, bool) {
	var cfg config
	cf := os.NewFile(fdConfig, "config")
	defer cf.Close()
	if err := json.NewDecoder(cf).Decode(&cfg); err != nil {
		rep.final(report{SetupError: fmt.Sprintf("reading the configuration: %v", err)})
		return cfg, false
	}
	return cfg, true
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

// passKept passes the mounts k finds back to Run.
func passKept(k *keeper) (bool, string) {
	ms, err := k.keep()
	if err == nil {
		err = sendKept(fdCarry, ms)
	}
	closeCarried(ms)
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}

// setup becomes the namespace's root, makes the mounts private, confines the
// process to cfg.Root with the requested mounts, and changes to cfg.Dir.
// With KeepMounts it returns what finds the mounts to keep.
func setup(cfg *config, rep *reporter) (*keeper, error) {
	if err := becomeRoot(cfg); err != nil {
		return nil, err
	}
	carriedFDs, err := receiveCarried(fdCarry, cfg.Carried)
	defer func() {
		// A setup that failed before it attached any: Run keeps them.
		_ = returnCarried(fdCarry, noCopies(len(cfg.Carried)))
		// Attached by now, or not to be: none may reach the command.
		closeAll(carriedFDs)
	}()
	if err != nil {
		return nil, err
	}
	if cfg.Root != "" {
		return nil, confine(cfg, rep, carriedFDs)
	}
	// No Root: the caller's host paths, as the caller gave them.
	if err := treeMountPoints(cfg); err != nil {
		return nil, err
	}
	for _, b := range cfg.Binds {
		fd, err := cloneTree(b.Source, b.ReadOnly)
		if err != nil {
			return nil, err
		}
		err = unix.MoveMount(fd, "", unix.AT_FDCWD, b.Target, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("mounting on %s: %w", b.Target, err)
		}
	}
	var k *keeper
	if cfg.Tree != "" {
		if k, err = treeCarried(cfg, carriedFDs); err != nil {
			return nil, err
		}
	}
	if err := os.Chdir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	return k, nil
}

// becomeRoot makes the process root of the namespace, names it and makes
// its mounts private.
func becomeRoot(cfg *config) error {
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
	if err := setHostname(cfg.Hostname); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
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

// confine prepares the mounts that need the host's tree, pivots into the
// stage, makes the mounts there (every path resolved inside the stage, see
// stageFS) and changes to the working directory.
func confine(cfg *config, rep *reporter, carriedFDs []int) error {
	pre, err := prepare(cfg)
	defer pre.close()
	if err != nil {
		return err
	}
	if err := enterRoot(cfg); err != nil {
		return err
	}
	s, err := newStageFS(rep)
	if err != nil {
		return err
	}
	defer s.close()
	for _, p := range cfg.MountPoints {
		if p == "/" {
			continue // "/" is left without a mount line (enterRoot)
		}
		id, err := selfBind(s.root, p)
		if err != nil {
			return err
		}
		s.own[id] = true
	}
	if cfg.Virtual {
		if err := s.virtual(pre); err != nil {
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
		if err := s.mountOn(pre.binds[i], b.Target, isDir); err != nil {
			return fmt.Errorf("bind mount of %s: %w", b.Source, err)
		}
	}
	if err := s.attachCarried(cfg.Carried, carriedFDs, pre.procs, cfg.Virtual); err != nil {
		return err
	}
	dir, err := s.resolve(cfg.Dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("working directory: %w", resolveErr(cfg.Dir, err))
	}
	defer unix.Close(dir)
	if err := unix.Fchdir(dir); err != nil {
		return fmt.Errorf("working directory %s: %w", cfg.Dir, err)
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

// setHostname names the namespace's UTS namespace. Podman's default
// seccomp profile refuses sethostname with EPERM to a container without CAP_SYS_ADMIN, even in a UTS namespace of
// its own: the namespace then keeps the container's name, which is
// harmless when it is already the one wanted (podman run --hostname
// localhost) and otherwise only changes what uname -n says to the commands.
func setHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil && err != unix.EPERM {
		return fmt.Errorf("sethostname %q: %w", name, err)
	}
	return nil
}
