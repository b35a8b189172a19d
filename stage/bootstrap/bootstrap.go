package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Bootstrap installs a Debian base system into o.Target, as vmdb2's
// `debootstrap` and `qemu-debootstrap` steps do, running the engine as root
// of the build's user namespace (package stage/userns, whose Init must have
// been called in main). Target is created if needed; whether it must be
// empty is the caller's business (see CheckEmpty).
//
// Device nodes that cannot be created are recorded in o.DeviceManifest
// (see the package documentation). The error, if any, says what failed and
// ends with the last lines the engine printed.
func Bootstrap(ctx context.Context, o Options) error {
	if ctx == nil {
		return errors.New("bootstrap: nil context")
	}
	o, err := o.normalized()
	if err != nil {
		return err
	}
	if err := CheckArch(o.Arch); err != nil {
		return err
	}
	prog := string(o.Engine)
	if _, err := exec.LookPath(prog); err != nil {
		return fmt.Errorf("bootstrap: %s is not installed: install it with 'apt-get install %s'", prog, prog)
	}
	if (!canMknod() || o.RecordDevices) && o.DeviceManifest == "" {
		return errors.New("bootstrap: an ordinary user cannot create the device nodes of /dev: give a device manifest file to record them in")
	}
	if err := userns.Available(); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := os.MkdirAll(o.Target, 0o755); err != nil {
		return fmt.Errorf("bootstrap: creating the target: %w", err)
	}
	if err := ensureCache(o.CacheDir); err != nil {
		return err
	}

	if err := runEngineLocked(ctx, o); err != nil {
		return err
	}
	if _, err := finishDev(o.Target, o.DeviceManifest, buildTime(o.Env), o.RecordDevices); err != nil {
		return err
	}
	if o.InstallKeyring {
		if err := installKeyring(o.Keyring, o.Target); err != nil {
			return err
		}
	}
	return nil
}

// runEngineLocked runs the engine holding the shared cache's lock: the
// engine's apt (mmdebstrap) takes apt's own lock in the cache, which a
// concurrent build would fail on ("Could not get lock"), and debootstrap
// downloads into the cache under fixed names. A concurrent build waits,
// then finds the packages downloaded.
func runEngineLocked(ctx context.Context, o Options) error {
	if o.TempDir != "" {
		if err := os.MkdirAll(o.TempDir, 0o755); err != nil {
			return fmt.Errorf("bootstrap: the engine's temporary directory: %w", err)
		}
		o.Env = append(append([]string(nil), o.Env...), "TMPDIR="+o.TempDir)
	}
	if o.CacheDir != "" {
		unlock, err := lockCache(ctx, o.CacheDir, o.Progress)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		defer unlock()
	}
	if o.Engine == EngineMmdebstrap {
		return runMmdebstrap(ctx, o)
	}
	return runDebootstrap(ctx, o)
}

// engineEnv is the environment of the engine: a clean one (the host's
// locale and variables do not leak into the target) with its proxy
// settings (ProxyEnv) plus o.Env.
func engineEnv(extra []string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LC_ALL=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive",
		"DEBCONF_NONINTERACTIVE_SEEN=true",
	}
	return mergeEnv(env, []string{"TMPDIR", "SOURCE_DATE_EPOCH"}, append(hostProxyEnv(), extra...))
}

// mergeEnv returns base plus the host's values of the variables named in
// pass, plus extra, each variable once: a later value replaces an earlier
// one.
func mergeEnv(base, pass, extra []string) []string {
	all := append([]string(nil), base...)
	for _, k := range pass {
		if v, ok := os.LookupEnv(k); ok {
			all = append(all, k+"="+v)
		}
	}
	all = append(all, extra...)
	idx := map[string]int{}
	var out []string
	for _, kv := range all {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// runEngine runs argv as root of the build's namespace, without
// confinement (the engine chroots into the target itself), and returns an
// error ending with the tail of its output.
func runEngine(ctx context.Context, o Options, argv, env []string, binds []userns.Bind) (err error) {
	home, removeHome, err := engineHome(o.TempDir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := removeHome(); err == nil {
			err = rerr
		}
	}()
	if home != "" {
		binds = append(binds, userns.Bind{Source: home, Target: "/root", ReadOnly: true})
	}
	stdout, stderr, tail := commandStreams(o.Run, o.Stdout, o.Stderr)
	err = runner(o.Run)(ctx, userns.Cmd{
		Argv:   argv,
		Env:    env,
		Dir:    "/",
		Binds:  binds,
		Stdout: stdout,
		Stderr: stderr,
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bootstrap: %s stopped: %w", argv[0], err)
	}
	if tail == nil { // the runner's error names the command
		return fmt.Errorf("bootstrap: installing %s into %s: %w", o.Suite, o.Target, err)
	}
	return fmt.Errorf("bootstrap: %s %s into %s failed: %w%s", argv[0], o.Suite, o.Target, err, tail.lastLines(12))
}

// engineHome makes the empty directory that the engine sees as the host's
// /root, its HOME (engineEnv), in the namespace only: the apt and dpkg it
// runs on the host side, before it chroots into the target, then read no
// settings of the host's root (~/.dpkg.cfg, ~/.config/apt), and an
// ordinary user's build, for which the host's /root is unreadable, does not
// print "dpkg: warning: failed to open configuration file
// '/root/.dpkg.cfg'". Commands in the target see the target's /root. It is
// made in tempDir (the host's temporary directory when ""); "" when the
// host has no /root.
func engineHome(tempDir string) (string, func() error, error) {
	none := func() error { return nil }
	if fi, err := os.Stat("/root"); err != nil || !fi.IsDir() {
		return "", none, nil
	}
	if tempDir != "" {
		if err := os.MkdirAll(tempDir, 0o755); err != nil {
			return "", none, fmt.Errorf("bootstrap: the engine's temporary directory: %w", err)
		}
	}
	home, err := os.MkdirTemp(tempDir, "home-")
	if err != nil {
		return "", none, fmt.Errorf("bootstrap: the engine's home directory: %w", err)
	}
	return home, func() error { return os.Remove(home) }, nil
}

func runDebootstrap(ctx context.Context, o Options) (err error) {
	argv := debootstrapArgv(o)

	// mknod is refused in the namespace: bind the host's nodes over
	// placeholders, and tell debootstrap it is in a container (lxc) so
	// that it does not insist on a test mknod first.
	hostBinds, created, err := preparePlaceholders(o.Target)
	defer func() {
		if rerr := removePlaceholders(o.Target, created); err == nil {
			err = rerr
		}
	}()
	if err != nil {
		return err
	}
	var binds []userns.Bind
	for _, b := range hostBinds {
		binds = append(binds, userns.Bind{Source: b[0], Target: b[1]})
	}
	// dpkg without fsync while the base system is installed.
	unsafe, err := addUnsafeIO(o.Target)
	defer func() {
		if rerr := unsafe(); err == nil {
			err = rerr
		}
	}()
	if err != nil {
		return err
	}
	env := engineEnv(append([]string{"container=lxc"}, o.Env...))
	return runEngine(ctx, o, argv, env, binds)
}

// debootstrapArgv is debootstrap's command line for o.
func debootstrapArgv(o Options) []string {
	argv := []string{"debootstrap", "--arch=" + o.Arch, "--variant=" + o.Variant,
		"--components=" + strings.Join(o.Components, ",")}
	if o.Keyring != "" {
		argv = append(argv, "--keyring="+o.Keyring)
	}
	if len(o.Include) > 0 {
		argv = append(argv, "--include="+strings.Join(o.Include, ","))
	}
	if len(o.Exclude) > 0 {
		argv = append(argv, "--exclude="+strings.Join(o.Exclude, ","))
	}
	if o.CacheDir != "" {
		argv = append(argv, "--cache-dir="+o.CacheDir)
	}
	return append(argv, o.Suite, o.Target, o.Mirror)
}

func runMmdebstrap(ctx context.Context, o Options) error {
	if len(o.Exclude) > 0 {
		return errors.New("bootstrap: mmdebstrap has no --exclude: use the debootstrap engine to exclude packages")
	}
	argv := mmdebstrapArgv(o)
	if err := runEngine(ctx, o, argv, engineEnv(o.Env), nil); err != nil {
		return err
	}
	return finishMmdebstrap(o.Target)
}

// mmdebstrapArgv is mmdebstrap's command line for o.
func mmdebstrapArgv(o Options) []string {
	argv := []string{"mmdebstrap", "--mode=root", "--format=directory",
		"--variant=" + o.Variant, "--architectures=" + o.Arch,
		"--components=" + strings.Join(o.Components, ","),
		`--aptopt=APT::Sandbox::User "root"`,
		"--skip=check/empty",
		// debootstrap leaves apt's package lists in the target, and vmdb2
		// 0.26 runs no apt-get update after it: keep them.
		"--skip=cleanup/apt/lists"}
	if host, _ := HostArch(); o.Arch != host {
		// mmdebstrap's own check of a foreign architecture needs the
		// host package arch-test, which vmdb2 does not; CheckArch has
		// checked that the host runs the target's programs (natively or
		// through a binfmt_misc entry with the F flag, which needs no
		// emulator copied into the target).
		argv = append(argv, "--skip=check/qemu")
	}
	// A merged /usr with the usr-is-merged package where the suite has
	// it (bookworm and later), as debootstrap does; without the hook,
	// apt satisfies init-system-helpers' "usrmerge | usr-is-merged" with
	// usrmerge, which pulls in perl.
	if fi, err := os.Stat(mergedUsrHook); err == nil && fi.IsDir() {
		argv = append(argv, "--hook-dir="+mergedUsrHook)
	}
	if o.Keyring != "" {
		argv = append(argv, "--keyring="+o.Keyring)
	}
	if len(o.Include) > 0 {
		argv = append(argv, "--include="+strings.Join(o.Include, ","))
	}
	if o.CacheDir != "" {
		// Download into the shared cache: bind it over the target's
		// archives for the whole run and keep mmdebstrap from emptying
		// it; unbind before its final clean-up.
		q := shellQuote(o.CacheDir)
		argv = append(argv,
			"--skip=essential/unlink",
			`--setup-hook=mkdir -p "$1/var/cache/apt/archives" && mount --bind `+q+` "$1/var/cache/apt/archives"`,
			`--customize-hook=umount "$1/var/cache/apt/archives"`,
		)
	}
	return append(argv, o.Suite, o.Target, o.Mirror)
}

// finishMmdebstrap makes mmdebstrap's result debootstrap's, inside the
// target: mmdebstrap's copy of the --aptopt options (they were for this
// run only) and apt's auto-installed marks (after debootstrap every
// package counts as installed by hand) are removed; mmdebstrap's clean-up
// writes an empty /etc/machine-id as a new, writable file, and systemd
// (and debootstrap's result) has it read-only.
func finishMmdebstrap(target string) error {
	r, err := stage.OpenRoot(target)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer r.Close()
	for _, p := range []string{"etc/apt/apt.conf.d/99mmdebstrap", "var/lib/apt/extended_states"} {
		if fi, err := r.Lstat(p); err == nil && !fi.IsDir() {
			if err := r.Remove(p); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
		}
	}
	if fi, err := r.Lstat("etc/machine-id"); err == nil && fi.Mode().IsRegular() {
		if err := r.Chmod("etc/machine-id", 0o444); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	return nil
}

// mergedUsrHook is mmdebstrap's hook that merges /usr when the suite has
// the usr-is-merged package.
const mergedUsrHook = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"

// unsafeIOFile is the dpkg configuration file that turns fsync off while
// packages are installed; it never stays in the target.
const unsafeIOFile = "etc/dpkg/dpkg.cfg.d/vmdb2-unsafe-io"

// addUnsafeIO writes the dpkg force-unsafe-io file into root unless
// something is there (resolved inside root, a link not followed), and
// returns the function that removes it.
func addUnsafeIO(root string) (func() error, error) {
	nothing := func() error { return nil }
	r, err := stage.OpenRoot(root)
	if err != nil {
		return nothing, fmt.Errorf("bootstrap: %w", err)
	}
	defer r.Close()
	if err := r.Mkdirs(path.Dir(unsafeIOFile), 0o755); err != nil {
		return nothing, fmt.Errorf("bootstrap: %w", err)
	}
	err = r.CreateNew(unsafeIOFile, []byte("# written by vmdb2 for the duration of one step\nforce-unsafe-io\n"), 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nothing, nil
	}
	remove := func() error {
		r, err := stage.OpenRoot(root)
		if err == nil {
			defer r.Close()
			err = r.Remove(unsafeIOFile)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("bootstrap: %w", err)
		}
		return nil
	}
	if err != nil {
		remove()
		return nothing, fmt.Errorf("bootstrap: %w", err)
	}
	return remove, nil
}

// installKeyring copies the keyring file into the target's
// /etc/apt/trusted.gpg.d, as .asc if it is ASCII-armoured, else as .gpg.
// The directory is resolved inside the target; a link, FIFO or device at
// the file's name is refused.
func installKeyring(keyring, target string) error {
	b, err := os.ReadFile(keyring)
	if err != nil {
		return fmt.Errorf("bootstrap: install_keyring: %w", err)
	}
	name := strings.TrimSuffix(filepath.Base(keyring), filepath.Ext(keyring))
	ext := ".gpg"
	if bytes.Contains(b[:min(len(b), 1024)], []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		ext = ".asc"
	}
	r, err := stage.OpenRoot(target)
	if err != nil {
		return fmt.Errorf("bootstrap: install_keyring: %w", err)
	}
	defer r.Close()
	const dir = "etc/apt/trusted.gpg.d"
	if err := r.Mkdirs(dir, 0o755); err != nil {
		return fmt.Errorf("bootstrap: install_keyring: %w", err)
	}
	if err := r.PutFile(path.Join(dir, name+ext), b, 0o644); err != nil {
		return fmt.Errorf("bootstrap: install_keyring: %w", err)
	}
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// commandStreams returns the output streams of a command run with run,
// and the tail of its output that this package's error carries (nil: none).
// A build's Runner reports the output itself and puts its last lines in its
// error, or leaves them out where the user saw them already: given no
// streams, it is left to do so, so the output is never shown twice. With
// userns.Run (run nil) the error carries the tail from here.
func commandStreams(run Runner, stdout, stderr io.Writer) (io.Writer, io.Writer, *tailBuffer) {
	if run != nil {
		return stdout, stderr, nil
	}
	tail := &tailBuffer{max: 4 << 10}
	return io.MultiWriter(writerOr(stdout), tail), io.MultiWriter(writerOr(stderr), tail), tail
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// lastLines returns the last n lines written, as "\n  | line" text, or ""
// (also for a nil tail).
func (t *tailBuffer) lastLines(n int) string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, l := range lines {
		if l = strings.TrimRight(l, "\r"); l != "" {
			b.WriteString("\n  | " + l)
		}
	}
	return b.String()
}
