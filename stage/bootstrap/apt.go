package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap/internal/flock"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// AptOptions describe one run of apt inside a target, as vmdb2's `apt`
// step.
type AptOptions struct {
	// Root is the target's root directory on the host (the stage).
	Root string
	// Packages are the packages to install.
	Packages []string
	// Recommends installs recommended packages too (vmdb2's default);
	// false adds --no-install-recommends.
	Recommends bool
	// Clean runs `apt-get clean` in the target afterwards (vmdb2's
	// default), which leaves the shared cache alone.
	Clean bool
	// CacheDir is the shared cache of downloaded .deb files, bound over
	// the target's /var/cache/apt/archives while apt runs. "" means
	// DefaultCacheDir(); "-" disables it (apt then uses the target's own
	// directory).
	CacheDir string
	// Stdout and Stderr receive apt's output; nil discards it.
	Stdout, Stderr io.Writer
	// Env are extra environment variables (KEY=VALUE), e.g. http_proxy.
	Env []string
	// Run runs apt-get in the build's namespace; nil means userns.Run.
	Run Runner
	// Progress, when set, is told when the run waits for another build
	// or does not repeat an update.
	Progress func(msg string)
	// Updates, when set, is the build's record of its apt-get updates:
	// an update is skipped when the target's sources and lists are as the
	// build's last update in it left them (see UpdateMemo).
	Updates *UpdateMemo
}

// aptOpts are the options every apt-get run gets: no _apt sandbox user
// (downloads land in the shared cache owned by the namespace's root, which
// the calling user can manage on the host), no pty for dpkg's output and no
// fsync by dpkg. They are given on the command line, so nothing is left in
// the target.
var aptOpts = []string{
	"-o", "APT::Sandbox::User=root",
	"-o", "Dpkg::Use-Pty=0",
	"-o", "Dpkg::Options::=--force-unsafe-io",
	"-o", "Dpkg::Options::=--force-confold",
	"-o", "DPkg::Lock::Timeout=600",
}

// cacheLockName is the lock file, in the shared cache, that serialises the
// runs that download into it.
const cacheLockName = ".vmdb2-lock"

// lockCache waits until this process holds the shared cache's lock (or
// ctx is done), telling progress, if set, when another build holds it.
func lockCache(ctx context.Context, cache string, progress func(string)) (unlock func(), err error) {
	unlock, err = flock.LockSaying(ctx, filepath.Join(cache, cacheLockName), func() {
		if progress != nil {
			progress(fmt.Sprintf("waiting for the shared package cache %s: another build is downloading into it", cache))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("the shared package cache: %w", err)
	}
	return unlock, nil
}

// AptUpdate runs `apt-get update` inside the target, as vmdb2's
// qemu-debootstrap step does after installing. Only Root, CacheDir,
// Stdout, Stderr, Env, Run, Progress and Updates are used.
func AptUpdate(ctx context.Context, o AptOptions) error {
	o.Packages = nil
	return aptRun(ctx, o, false)
}

// AptInstall installs o.Packages inside the target with apt-get, running
// as root of the build's user namespace confined to o.Root with the
// virtual filesystems mounted (package stage/userns: its Init must have
// been called in main):
//
//	apt-get update                                  (unless o.Updates skips it)
//	apt-get -y --no-show-progress [--no-install-recommends] install PACKAGES
//	apt-get clean                                   (if o.Clean)
//
// with DEBIAN_FRONTEND=noninteractive and the options in the package
// documentation. Packages are downloaded into the shared cache (o.CacheDir)
// while holding its lock, then installed from it; a package already in the
// cache is not downloaded again.
func AptInstall(ctx context.Context, o AptOptions) error {
	if len(o.Packages) == 0 {
		return nil
	}
	return aptRun(ctx, o, true)
}

func aptRun(ctx context.Context, o AptOptions, install bool) (err error) {
	if ctx == nil {
		return errors.New("apt: nil context")
	}
	if o.Root == "" {
		return errors.New("apt: no target root directory given")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return fmt.Errorf("apt: %w", err)
	}
	if err := checkAptGet(root); err != nil {
		return err
	}
	cache, err := aptCacheDir(o.CacheDir)
	if err != nil {
		return err
	}

	removeResolv := addResolvConf(root)
	defer func() {
		if rerr := removeResolv(); err == nil && rerr != nil {
			err = fmt.Errorf("apt: %w", rerr)
		}
	}()

	a := &aptRunner{ctx: ctx, o: o, root: root, env: aptEnv(o.Env)}
	var binds []userns.Bind
	if cache != "" {
		binds = []userns.Bind{{Source: cache, Target: "/var/cache/apt/archives"}}
	}
	installArgs := []string{"-y", "--no-show-progress"}
	if !o.Recommends {
		installArgs = append(installArgs, "--no-install-recommends")
	}
	installArgs = append(installArgs, "install")
	installArgs = append(installArgs, o.Packages...)

	if err := a.updateAndDownload(cache, binds, install, installArgs); err != nil || !install {
		return err
	}
	var ro []userns.Bind
	if cache != "" {
		// Install from the cache without holding its lock: the .deb
		// files are complete (apt renames them into place), and apt's
		// own lock on the archives would make concurrent builds fail.
		ro = []userns.Bind{{Source: cache, Target: "/var/cache/apt/archives", ReadOnly: true}}
		installArgs = append([]string{"-o", "Debug::NoLocking=true"}, installArgs...)
	}
	if err := a.install(ro, installArgs); err != nil {
		return err
	}
	if o.Clean {
		// Without the bind: this empties the target's own cache only.
		return a.apt(nil, "clean")
	}
	return nil
}

// aptCacheDir is the package cache an apt run uses: dir made absolute and
// created; DefaultCacheDir for ""; none ("") for "-".
func aptCacheDir(dir string) (string, error) {
	var err error
	switch dir {
	case "-":
		return "", nil
	case "":
		if dir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", fmt.Errorf("apt: %w", err)
	}
	if err := ensureCache(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// updateAndDownload updates the package lists and, for an install with a
// package cache, downloads the packages into it, holding the cache's lock
// (other builds wait).
func (a *aptRunner) updateAndDownload(cache string, binds []userns.Bind, install bool, installArgs []string) error {
	if cache != "" {
		unlock, err := lockCache(a.ctx, cache, a.o.Progress)
		if err != nil {
			return fmt.Errorf("apt: %w", err)
		}
		defer unlock()
	}
	if err := a.update(binds); err != nil {
		return err
	}
	if !install || cache == "" {
		return nil
	}
	return a.apt(binds, append([]string{"--download-only"}, installArgs...)...)
}

// aptRunner runs apt-get and the commands around it in one target.
type aptRunner struct {
	ctx  context.Context
	o    AptOptions
	root string
	env  []string
}

// apt runs apt-get with aptOpts and args.
func (a *aptRunner) apt(binds []userns.Bind, args ...string) error {
	return a.runIn(append(append([]string{"apt-get"}, aptOpts...), args...), a.env, binds, nil)
}

// install runs apt-get's install with the kernels' initramfs hooks
// deferred (initramfs.go), then makes the deferred initramfs images once.
func (a *aptRunner) install(binds []userns.Bind, args []string) error {
	before, err := a.kernelVersions()
	if err != nil {
		return err
	}
	argv := append(append([]string{"apt-get"}, aptOpts...), args...)
	if err := a.runIn(argv, slices.Concat(a.env, []string{initrdEnv}), binds, nil); err != nil {
		return err
	}
	return a.makeDeferredInitramfs(before)
}

// runIn runs argv in the target, its output to the options' streams (or,
// when capture is set, its standard output there).
func (a *aptRunner) runIn(argv, env []string, binds []userns.Bind, capture io.Writer) error {
	stdout, stderr, tail := commandStreams(a.o.Run, a.o.Stdout, a.o.Stderr)
	if capture != nil {
		stdout = capture
	}
	err := runner(a.o.Run)(a.ctx, userns.Cmd{
		Root:    a.root,
		Virtual: true,
		Argv:    argv,
		Env:     env,
		Binds:   binds,
		Stdout:  stdout,
		Stderr:  stderr,
	})
	if err == nil {
		return nil
	}
	if a.ctx.Err() != nil {
		return fmt.Errorf("apt: stopped: %w", err)
	}
	if tail == nil { // the runner's error names the command
		return fmt.Errorf("apt: in %s: %w", a.root, err)
	}
	return fmt.Errorf("apt: %s in %s failed: %w%s", shellJoin(argv), a.root, err, tail.lastLines(12))
}

// checkAptGet checks that the target has apt-get (looked up inside it).
func checkAptGet(root string) error {
	r, err := stage.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("apt: %w", err)
	}
	defer r.Close()
	if _, err := r.Stat("usr/bin/apt-get"); err != nil {
		return fmt.Errorf("apt: the target %s has no apt-get (%v): install a base system with the debootstrap step first", root, err)
	}
	return nil
}

// addResolvConf creates an empty etc/resolv.conf in the target if nothing
// is there (not even a link), for the namespace to lend the host's content
// to, and returns the function that removes it again. Both are resolved
// inside the target.
func addResolvConf(root string) (remove func() error) {
	const resolv = "etc/resolv.conf"
	nothing := func() error { return nil }
	r, err := stage.OpenRoot(root)
	if err != nil {
		return nothing
	}
	defer r.Close()
	if err := r.CreateNew(resolv, nil, 0o644); err != nil {
		return nothing // there already, or no /etc: apt will say
	}
	return func() error {
		r, err := stage.OpenRoot(root)
		if err != nil {
			return err
		}
		defer r.Close()
		if err := r.Remove(resolv); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
}

// aptEnv is the environment of apt inside the target: a clean one with
// the host's proxy settings (ProxyEnv) plus extra.
func aptEnv(extra []string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LC_ALL=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive",
	}
	return mergeEnv(env, []string{"SOURCE_DATE_EPOCH"}, append(hostProxyEnv(), extra...))
}

func shellJoin(argv []string) string {
	s := ""
	for i, a := range argv {
		if i > 0 {
			s += " "
		}
		if a == "" || containsSpecial(a) {
			a = shellQuote(a)
		}
		s += a
	}
	return s
}

func containsSpecial(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == '=' || r == '+' || r == ',':
		default:
			return true
		}
	}
	return false
}
