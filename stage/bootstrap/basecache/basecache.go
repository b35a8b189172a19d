// Package basecache builds a Debian base system once and keeps it as a
// tarball, so that the project's tests (and benchmarks) that need a real
// root filesystem do not each spend a minute in debootstrap.
//
// The tarball lives in $XDG_CACHE_HOME/vmdb2-test/ (~/.cache/vmdb2-test/),
// or /var/cache/vmdb2-test/ for root, named after the suite, architecture
// and variant and a hash of every input (suite, mirror, architecture,
// variant, components, extra packages, engine and its version, and this
// package's format version): change any of them and a new tarball is built.
// It is written by stage/rootfs.Pack (device nodes included, numeric
// owners) and unpacked by stage/rootfs.Unpack. Packages are downloaded
// through the shared package cache <cache dir>/apt-archives.
//
// Two processes asking for the same base at once are safe: the second waits
// on a lock file (flock, released when its holder dies) and then finds the
// tarball. Nothing removes old tarballs; delete the directory to reclaim
// the space.
//
// Like stage/bootstrap, it needs userns.Init at the start of main (or
// TestMain).
package basecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap/internal/flock"
	"github.com/vmdb2-go/vmdb2/stage/rootfs"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// formatVersion changes whenever the way a base is built changes.
const formatVersion = 1

// Spec describes a base system.
type Spec struct {
	// Suite and Mirror default to "bookworm" and
	// "http://deb.debian.org/debian".
	Suite, Mirror string
	// Arch defaults to the host's.
	Arch string
	// Variant defaults to "minbase" (the smallest that has apt).
	Variant string
	// Components default to [main].
	Components []string
	// Packages are installed with apt after the bootstrap, without
	// recommends (e.g. linux-image-amd64).
	Packages []string
	// Engine defaults to bootstrap.DefaultEngine.
	Engine bootstrap.Engine
}

func (s Spec) normalized() (Spec, error) {
	if s.Suite == "" {
		s.Suite = "bookworm"
	}
	if s.Mirror == "" {
		s.Mirror = "http://deb.debian.org/debian"
	}
	if s.Arch == "" {
		a, err := bootstrap.HostArch()
		if err != nil {
			return s, err
		}
		s.Arch = a
	}
	if s.Variant == "" {
		s.Variant = "minbase"
	}
	if len(s.Components) == 0 {
		s.Components = []string{"main"}
	}
	s.Packages = append([]string(nil), s.Packages...)
	sort.Strings(s.Packages)
	if s.Engine == "" {
		s.Engine = bootstrap.DefaultEngine
	}
	return s, nil
}

// Dir returns the directory of the cached tarballs:
// $XDG_CACHE_HOME/vmdb2-test, or /var/cache/vmdb2-test for root.
func Dir() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/cache/vmdb2-test", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("basecache: %w (set XDG_CACHE_HOME or HOME)", err)
	}
	return filepath.Join(d, "vmdb2-test"), nil
}

// PackageCache returns the shared .deb cache the bases are built with,
// which tests may pass to bootstrap.AptInstall too.
func PackageCache() (string, error) {
	d, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "apt-archives"), nil
}

// key returns the hash naming the tarball of s.
func key(s Spec) (string, error) {
	ver, err := engineVersion(s.Engine)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(struct {
		Spec
		EngineVersion string
		Format        int
	}{s, ver, formatVersion})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])[:16], nil
}

func engineVersion(e bootstrap.Engine) (string, error) {
	out, err := exec.Command(string(e), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("basecache: %s --version: %w (install %s)", e, err, e)
	}
	return strings.TrimSpace(string(out)), nil
}

// Tarball returns the path of the tarball of the base system s, building
// it first if it is not in the cache. log, if not nil, receives the
// engine's and apt's output while building.
func Tarball(ctx context.Context, s Spec, log io.Writer) (string, error) {
	s, err := s.normalized()
	if err != nil {
		return "", err
	}
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	k, err := key(s)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("base-%s-%s-%s-%s", s.Suite, s.Arch, strings.Trim(s.Variant, "-"), k)
	tarball := filepath.Join(dir, name+".tar")
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("basecache: %w", err)
	}
	unlock, err := flock.Lock(ctx, filepath.Join(dir, name+".lock"))
	if err != nil {
		return "", fmt.Errorf("basecache: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil // built while we waited
	}
	if err := build(ctx, s, dir, tarball, log); err != nil {
		return "", err
	}
	return tarball, nil
}

func build(ctx context.Context, s Spec, dir, tarball string, log io.Writer) (err error) {
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return fmt.Errorf("basecache: %w", err)
	}
	defer func() {
		if rerr := userns.RemoveAll(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("basecache: %w", rerr)
		}
	}()
	root := filepath.Join(tmp, "root")
	manifest := filepath.Join(tmp, "devices.json")
	pkgs := filepath.Join(dir, "apt-archives")
	start := time.Now()
	err = bootstrap.Bootstrap(ctx, bootstrap.Options{
		Suite: s.Suite, Mirror: s.Mirror, Arch: s.Arch, Variant: s.Variant,
		Components: s.Components, Target: root, CacheDir: pkgs,
		DeviceManifest: manifest, Engine: s.Engine, Stdout: log, Stderr: log,
	})
	if err != nil {
		return fmt.Errorf("basecache: building %s: %w", filepath.Base(tarball), err)
	}
	if len(s.Packages) > 0 {
		err = bootstrap.AptInstall(ctx, bootstrap.AptOptions{
			Root: root, Packages: s.Packages, Clean: true, CacheDir: pkgs,
			Stdout: log, Stderr: log,
		})
		if err != nil {
			return fmt.Errorf("basecache: building %s: %w", filepath.Base(tarball), err)
		}
	}
	if err := rootfs.Pack(ctx, root, nil, tarball, rootfs.PackOptions{DeviceManifest: manifest}); err != nil {
		return fmt.Errorf("basecache: %w", err)
	}
	if log != nil {
		fmt.Fprintf(log, "basecache: built %s in %s\n", tarball, time.Since(start).Round(time.Second))
	}
	return nil
}

// Unpack unpacks the base system s (building it first if needed) into
// target, which must exist, recording the device nodes it cannot create in
// manifest (see stage/rootfs.Unpack).
func Unpack(ctx context.Context, s Spec, target, manifest string, log io.Writer) error {
	tarball, err := Tarball(ctx, s, log)
	if err != nil {
		return err
	}
	if manifest == "" && os.Geteuid() != 0 {
		return errors.New("basecache: an ordinary user needs a device manifest to unpack a base")
	}
	if err := rootfs.Unpack(ctx, tarball, target, rootfs.UnpackOptions{DeviceManifest: manifest}); err != nil {
		return fmt.Errorf("basecache: %w", err)
	}
	return nil
}
