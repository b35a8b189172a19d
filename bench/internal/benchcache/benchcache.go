// Package benchcache names the rootfs caches the benchmarks share. A cache
// lives in the user's cache directory ($XDG_CACHE_HOME or ~/.cache, under
// vmdb2-bench), so a reboot that empties /tmp keeps it, and its name holds
// a digest of the spec that makes it, so a changed spec gets a cache of its
// own instead of an old tree.
package benchcache

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Path is the cache of the tree spec makes: DIR/NAME-DIGEST.tar.zst, where
// NAME is the spec's base name without its extension and DIGEST the first
// 8 bytes of the SHA-256 of its contents. It creates DIR.
func Path(spec string) (string, error) {
	data, err := os.ReadFile(spec)
	if err != nil {
		return "", fmt.Errorf("reading the spec that makes the benchmarks' rootfs cache: %w", err)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory for the benchmarks (set XDG_CACHE_HOME): %w", err)
	}
	dir := filepath.Join(base, "vmdb2-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return filepath.Join(dir, fmt.Sprintf("%s-%x.tar.zst", specName(spec), sum[:8])), nil
}

// specName is the spec's base name without its extension.
func specName(spec string) string {
	return strings.TrimSuffix(filepath.Base(spec), filepath.Ext(spec))
}

// Default is Path(spec), for a flag's default value: when the spec cannot
// be read or no cache directory is known it says why on standard error and
// falls back to a name in the temporary directory.
func Default(spec string) string {
	p, err := Path(spec)
	if err != nil {
		p = filepath.Join(os.TempDir(), "vmdb2-bench-"+specName(spec)+".tar.zst")
		fmt.Fprintf(os.Stderr, "benchcache: %v; the rootfs cache is %s\n", err, p)
	}
	return p
}
