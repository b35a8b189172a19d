package boottest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultCacheDir is where CachedTree keeps its tarballs.
const DefaultCacheDir = "/var/cache/vmdb2-test"

// TreeSpec says how a Debian tree is bootstrapped with the host's
// debootstrap. Every field goes into the cache key.
type TreeSpec struct {
	Suite   string   // e.g. "bookworm"
	Mirror  string   // e.g. "http://deb.debian.org/debian"
	Variant string   // e.g. "minbase"
	Include []string // extra packages (--include)
	Arch    string   // "" = the host's (debootstrap's default)
}

// BookwormBootable is the tree the boot tests use: a minimal bookworm with
// a kernel, systemd, udev and the GRUB files for BIOS and UEFI (the -bin
// packages only: no grub-pc/grub-efi postinst runs grub-install).
var BookwormBootable = TreeSpec{
	Suite:   "bookworm",
	Mirror:  "http://deb.debian.org/debian",
	Variant: "minbase",
	Include: []string{"linux-image-amd64", "systemd-sysv", "grub-pc-bin", "grub-efi-amd64-bin", "udev", "e2fsprogs"},
}

// Key returns the cache key of s: a hash of every input.
func (s TreeSpec) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "debootstrap v1\nsuite=%s\nmirror=%s\nvariant=%s\narch=%s\ninclude=%s\n",
		s.Suite, s.Mirror, s.Variant, s.Arch, strings.Join(s.Include, ","))
	return s.Suite + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ErrNotRoot is returned by CachedTree when the tarball is not cached and
// the caller is not root (debootstrap needs root).
var ErrNotRoot = errors.New("boottest: debootstrap needs root to build the test tree")

// CachedTree returns the path of a tarball (tar, numeric owners) of the
// tree s describes, running debootstrap once and keeping the result in
// cacheDir ("" = DefaultCacheDir) under its Key. log receives
// debootstrap's output (nil: discarded).
func CachedTree(ctx context.Context, s TreeSpec, cacheDir string, log io.Writer) (string, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir
	}
	tarball := filepath.Join(cacheDir, s.Key()+".tar")
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil
	}
	if os.Geteuid() != 0 {
		return "", ErrNotRoot
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("boottest: cache: %w", err)
	}
	work, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return "", fmt.Errorf("boottest: cache: %w", err)
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	args := []string{"--variant=" + s.Variant}
	if len(s.Include) > 0 {
		args = append(args, "--include="+strings.Join(s.Include, ","))
	}
	if s.Arch != "" {
		args = append(args, "--arch="+s.Arch)
	}
	args = append(args, s.Suite, root, s.Mirror)
	if err := runLogged(ctx, log, "debootstrap", args...); err != nil {
		return "", err
	}
	tmp := filepath.Join(work, "tree.tar")
	if err := runLogged(ctx, log, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-cf", tmp, "."); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return "", fmt.Errorf("boottest: cache: %w", err)
	}
	return tarball, nil
}

// ExtractTree unpacks a tarball made by CachedTree into dir (which must
// exist), keeping owners, modes and extended attributes. It needs root,
// like the debootstrap that made it.
func ExtractTree(ctx context.Context, tarball, dir string) error {
	return runLogged(ctx, nil, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", dir, "-xpf", tarball)
}

func runLogged(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var tail tailBuffer
	if log != nil {
		cmd.Stdout = io.MultiWriter(log, &tail)
		cmd.Stderr = io.MultiWriter(log, &tail)
	} else {
		cmd.Stdout, cmd.Stderr = &tail, &tail
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("boottest: %s: %w: %s", name, err, strings.TrimSpace(tail.String()))
	}
	return nil
}

// tailBuffer keeps the last 2 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = append([]byte(nil), t.b[len(t.b)-2048:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
