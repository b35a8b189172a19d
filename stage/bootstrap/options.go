package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Engine names the program that installs the base system.
type Engine string

// The engines Bootstrap can use. See the package documentation for what
// each is used for.
const (
	EngineDebootstrap Engine = "debootstrap"
	EngineMmdebstrap  Engine = "mmdebstrap"
)

// DefaultEngine is the engine used when Options.Engine is empty (callers
// such as vmdb2's debootstrap step choose explicitly).
const DefaultEngine = EngineDebootstrap

// Options describe one base-system installation: the keys of vmdb2's
// `debootstrap` and `qemu-debootstrap` steps, plus where things go.
type Options struct {
	// Suite is the release to install, e.g. "bookworm". Required.
	Suite string
	// Mirror is the Debian mirror, e.g. "http://deb.debian.org/debian".
	// Required.
	Mirror string
	// Arch is the Debian architecture to install. "" means the host's
	// (see HostArch). A foreign architecture needs qemu-user-static and
	// its binfmt_misc handler for that architecture (see CheckArch).
	Arch string
	// Variant is debootstrap's variant: "" or "-" for the default
	// (Priority required and important), "minbase", "buildd".
	Variant string
	// Components are the archive components; nil means [main].
	Components []string
	// Include are extra packages to install.
	Include []string
	// Exclude are packages taken out of debootstrap's list (its
	// --exclude); only EngineDebootstrap has the option.
	Exclude []string
	// Keyring is a host file of trusted keys to check the mirror's
	// Release file with (debootstrap --keyring). "" means the host's
	// default keyrings.
	Keyring string
	// InstallKeyring copies Keyring into the target as
	// etc/apt/trusted.gpg.d/<name>.gpg (binary keyring) or .asc (armoured)
	// so that apt inside trusts the same keys. vmdb2 0.26 ran `apt-key add`
	// instead, which no longer exists in bookworm.
	InstallKeyring bool
	// Target is the host directory to install into (the stage's root). It
	// is created if missing.
	Target string
	// CacheDir is the shared cache of downloaded .deb files. "" means
	// DefaultCacheDir(); "-" disables the cache.
	CacheDir string
	// DeviceManifest is a file (outside Target) where the device nodes
	// that cannot be created in Target are recorded, in the format of
	// package stage/rootfs (rootfs.Manifest). Entries already in it for
	// other paths are kept. It is needed whenever this process cannot
	// mknod (an ordinary user; root in a container without CAP_MKNOD);
	// Bootstrap fails before starting if it is then "".
	DeviceManifest string
	// RecordDevices records the device nodes in DeviceManifest even when
	// this process could create them (as real root), so that a build as
	// root and one as an ordinary user give the same image.
	RecordDevices bool
	// Engine selects the installer; "" means DefaultEngine.
	Engine Engine
	// Stdout and Stderr receive the engine's output; nil discards it.
	Stdout, Stderr io.Writer
	// Env are extra environment variables (KEY=VALUE) for the engine,
	// e.g. http_proxy.
	Env []string
	// Run runs the engine in the build's namespace; nil means userns.Run.
	Run Runner
	// Progress, when set, is told when the run waits for another build.
	Progress func(msg string)
	// TempDir is the engine's TMPDIR: the build's own scratch directory,
	// so that what the engine leaves there when it is killed (mmdebstrap's
	// mmdebstrap.* directories) goes with the build's stage. It is created
	// if missing. "" leaves the host's TMPDIR.
	TempDir string
}

// Runner runs one command inside the build's user namespace, as
// userns.Run does; a build passes its own, which reports the commands and
// their output.
type Runner func(ctx context.Context, c userns.Cmd) error

// runner returns run, or userns.Run when it is nil.
func runner(run Runner) Runner {
	if run == nil {
		return userns.Run
	}
	return run
}

// Defaults of vmdb2's debootstrap step.
var defaultComponents = []string{"main"}

// normalized returns o with defaults filled in, or an error saying what is
// wrong with it: first what to install and where, then the files it
// reads and writes beside the target, then the engine.
func (o Options) normalized() (Options, error) {
	o, err := o.normalizedTarget()
	if err != nil {
		return o, err
	}
	if o, err = o.normalizedSelection(); err != nil {
		return o, err
	}
	if o, err = o.normalizedFiles(); err != nil {
		return o, err
	}
	if o.Engine == "" {
		o.Engine = DefaultEngine
	}
	switch o.Engine {
	case EngineDebootstrap, EngineMmdebstrap:
	default:
		return o, fmt.Errorf("bootstrap: unknown engine %q: use %q or %q", o.Engine, EngineDebootstrap, EngineMmdebstrap)
	}
	return o, nil
}

// normalizedTarget checks the suite and the mirror, makes the target
// absolute and fills in the host's architecture.
func (o Options) normalizedTarget() (Options, error) {
	if o.Suite == "" || o.Mirror == "" {
		return o, errors.New("bootstrap: the suite and the mirror must be given (missing arg for debootstrap step)")
	}
	if o.Target == "" {
		return o, errors.New("bootstrap: no target directory given")
	}
	abs, err := filepath.Abs(o.Target)
	if err != nil {
		return o, fmt.Errorf("bootstrap: target %s: %w", o.Target, err)
	}
	o.Target = abs
	if o.Arch == "" {
		if o.Arch, err = HostArch(); err != nil {
			return o, err
		}
	}
	return o, nil
}

// normalizedSelection checks and fills in the variant, the components
// and the extra packages.
func (o Options) normalizedSelection() (Options, error) {
	if o.Variant == "" {
		o.Variant = "-"
	}
	switch o.Variant {
	case "-", "minbase", "buildd":
	default:
		return o, fmt.Errorf("bootstrap: unknown variant %q: use \"-\" (the default), \"minbase\" or \"buildd\"", o.Variant)
	}
	if len(o.Components) == 0 {
		o.Components = defaultComponents
	}
	for _, list := range [][]string{o.Components, o.Include} {
		for _, s := range list {
			if s == "" || strings.ContainsAny(s, ", \t\n") {
				return o, fmt.Errorf("bootstrap: bad component or package name %q", s)
			}
		}
	}
	return o, nil
}

// normalizedFiles makes the keyring, the package cache and the device
// manifest absolute (the cache defaulting to the shared one, "-" meaning
// none) and checks that the keyring exists and the manifest is outside
// the target.
func (o Options) normalizedFiles() (Options, error) {
	var err error
	if o.Keyring != "" {
		if o.Keyring, err = filepath.Abs(o.Keyring); err != nil {
			return o, fmt.Errorf("bootstrap: keyring: %w", err)
		}
		if _, err := os.Stat(o.Keyring); err != nil {
			return o, fmt.Errorf("bootstrap: keyring: %w", err)
		}
	} else if o.InstallKeyring {
		return o, errors.New("bootstrap: install_keyring needs a keyring file")
	}
	switch o.CacheDir {
	case "-":
		o.CacheDir = ""
	case "":
		if o.CacheDir, err = DefaultCacheDir(); err != nil {
			return o, err
		}
	default:
		if o.CacheDir, err = filepath.Abs(o.CacheDir); err != nil {
			return o, fmt.Errorf("bootstrap: cache directory: %w", err)
		}
	}
	if o.DeviceManifest != "" {
		if o.DeviceManifest, err = filepath.Abs(o.DeviceManifest); err != nil {
			return o, fmt.Errorf("bootstrap: device manifest: %w", err)
		}
		if within(o.Target, o.DeviceManifest) {
			return o, fmt.Errorf("bootstrap: the device manifest %s must be outside the target %s", o.DeviceManifest, o.Target)
		}
	}
	return o, nil
}

// within reports whether p is dir or below it (both absolute and clean).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// DefaultCacheDir returns the shared cache of downloaded packages:
// /var/cache/vmdb2/apt-archives for root, else
// $XDG_CACHE_HOME/vmdb2/apt-archives (~/.cache/vmdb2/apt-archives);
// $VMDB2_CACHE_DIR/apt-archives when VMDB2_CACHE_DIR is set.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("VMDB2_CACHE_DIR"); d != "" {
		return filepath.Join(d, "apt-archives"), nil
	}
	if os.Geteuid() == 0 {
		return "/var/cache/vmdb2/apt-archives", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("bootstrap: no cache directory for downloaded packages (%v): set XDG_CACHE_HOME or HOME", err)
	}
	return filepath.Join(d, "vmdb2", "apt-archives"), nil
}

// ensureCache creates the cache directory and its partial/ subdirectory,
// owned by the caller (namespace root).
func ensureCache(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "partial"), 0o755); err != nil {
		return fmt.Errorf("bootstrap: creating the package cache: %w", err)
	}
	return nil
}

// HostArch returns the host's Debian architecture: that of the running
// program, as vmdb2 uses `dpkg --print-architecture` (see debarch.Host).
func HostArch() (string, error) {
	a, err := debarch.Host()
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	return a.Name, nil
}
