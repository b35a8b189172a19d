package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestExamplesReproducible builds each example twice from the same cached
// rootfs, in different stage directories some seconds apart, once as root
// and once as an ordinary user, with SOURCE_DATE_EPOCH set: the images must
// have the same sha256.
func TestExamplesReproducible(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs")
	needMirror(t)
	testreq.NeedRoot(t, "to compare root and ordinary-user builds")
	uid, gid := ordinaryUser(t)
	for _, name := range []string{"bios", "uefi", "hybrid"} {
		t.Run(name, func(t *testing.T) {
			spec, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", name+".vmdb"))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(spec)
			cache := filepath.Join(exampleCacheDir(t, uid, gid), fmt.Sprintf("%s-%x.tar.zst", name, sum[:8]))
			if _, err := os.Stat(cache); err != nil {
				buildExample(t, name) // makes the cache
			}
			data, err := os.ReadFile(cache)
			if err != nil {
				t.Fatal(err)
			}
			env := []string{"SOURCE_DATE_EPOCH=1700000000"}
			// As root.
			rootDir := writeWorkDir(t, string(spec))
			os.WriteFile(filepath.Join(rootDir, "cache.tar.zst"), data, 0o644)
			cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img", "--rootfs-tarball", "cache.tar.zst")
			cmd.Dir = rootDir
			cmd.Env = append(os.Environ(), append(env, "TMPDIR="+filepath.Join(rootDir, "tmp"))...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build as root: %v\n%s", err, out)
			}
			time.Sleep(2 * time.Second)
			// As the ordinary user, elsewhere.
			userDir := writeWorkDir(t, string(spec))
			os.WriteFile(filepath.Join(userDir, "cache.tar.zst"), data, 0o644)
			chownTree(t, userDir, uid, gid)
			r := runAs(t, uid, gid, userDir, append(env, "TMPDIR="+filepath.Join(userDir, "tmp")), userBinary(t),
				"spec.vmdb", "--output", "out.img", "--rootfs-tarball", "cache.tar.zst")
			if r.code != 0 {
				t.Fatalf("build as %s: %s", testUser, r.stderr)
			}
			a, b := fileSHA(t, filepath.Join(rootDir, "out.img")), fileSHA(t, filepath.Join(userDir, "out.img"))
			if a != b {
				t.Errorf("root and ordinary-user builds differ: %s vs %s", a, b)
			} else {
				t.Logf("%s.img sha256 %s from both builds", name, a)
			}
		})
	}
}

// TestColdBuildsReproducible: two builds from nothing (debootstrap from the
// mirror and the kernel), one after the other, with one SOURCE_DATE_EPOCH,
// give identical images (checked by --check-reproducible).
func TestColdBuildsReproducible(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs")
	needMirror(t)
	spec, err := os.ReadFile(filepath.Join(repoRoot(t), "bench", "cold.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeWorkDir(t, string(spec))
	cmd := exec.Command(binary, "spec.vmdb", "--output", "cold.img", "--check-reproducible")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "TMPDIR="+filepath.Join(dir, "tmp"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "reproducible: both builds") {
		t.Errorf("unexpected output:\n%s", out)
	}
}
