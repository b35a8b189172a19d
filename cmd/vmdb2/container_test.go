package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"golang.org/x/sys/unix"
)

// The container the podman tests build in: a bookworm made locally by
// mmdebstrap (no registry is reachable) with the host programs a
// debootstrap build needs.
const (
	containerSuite    = "bookworm"
	containerPackages = "debootstrap,mmdebstrap,uidmap,e2fsprogs,zstd,libcap2-bin"
	containerTag      = "localhost/vmdb2-ci-test:" + containerSuite
)

// podmanRuntime are the options every podman call of the tests uses, as the
// README says: runc, because crun refuses this host's hybrid cgroup layout,
// and cgroupfs, because the test user has no systemd session.
var podmanRuntime = []string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}

// rootless is rootless podman run by the test user, with its storage in a
// temporary HOME and its own XDG_RUNTIME_DIR.
type rootless struct {
	uid, gid      int
	home, runtime string
	rootful       bool // podman run by root instead (a test of default capabilities)
}

func newRootless(t *testing.T) *rootless {
	t.Helper()
	checkTools(t, "podman", "runc", "mmdebstrap", "newuidmap", "debugfs", "e2fsck")
	uid, gid := ordinaryUser(t)
	r := &rootless{uid: uid, gid: gid, home: t.TempDir()}
	r.runtime = filepath.Join(r.home, "run")
	if err := os.Mkdir(r.runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	chownTree(t, r.home, uid, gid)
	t.Cleanup(r.stop)
	return r
}

// podman runs podman as the test user, or as root with its storage in the
// temporary HOME when the test is of rootful podman.
func (r *rootless) podman(t *testing.T, args ...string) result {
	t.Helper()
	all := append([]string{}, podmanRuntime...)
	if r.rootful {
		all = append(all, "--root", filepath.Join(r.home, "storage"), "--runroot", r.runtime, "--storage-driver", "vfs")
		cmd := exec.Command("podman", append(all, args...)...)
		cmd.Dir = r.home
		return runCommand(t, cmd)
	}
	env := []string{"XDG_RUNTIME_DIR=" + r.runtime, "XDG_CACHE_HOME=" + filepath.Join(r.home, ".cache"), "TMPDIR=" + r.home}
	return runAs(t, r.uid, r.gid, r.home, env, "podman", append(all, args...)...)
}

// stop ends the pause process rootless podman leaves to hold its user
// namespace, by the pid it recorded, so that no process outlives the test.
func (r *rootless) stop() {
	b, err := os.ReadFile(filepath.Join(r.runtime, "libpod", "tmp", "pause.pid"))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// containerImage is held while the container image's tarball is made, so
// that of the podman tests, which run in parallel, one makes it.
var containerImage sync.Mutex

// importImage makes the container image (once; cached in the test cache
// under a name from its package list) and imports it.
func (r *rootless) importImage(t *testing.T) {
	t.Helper()
	needMirror(t)
	sum := sha256.Sum256([]byte(containerSuite + "\n" + containerPackages))
	tarball := filepath.Join("/var/cache/vmdb2-test", "podman-"+containerSuite+"-"+hex.EncodeToString(sum[:6])+".tar")
	containerImage.Lock()
	defer containerImage.Unlock()
	if _, err := os.Stat(tarball); err != nil {
		if err := os.MkdirAll(filepath.Dir(tarball), 0o755); err != nil {
			t.Fatal(err)
		}
		// mmdebstrap chooses its output format by the name's ending.
		tmp := strings.TrimSuffix(tarball, ".tar") + ".tmp" + strconv.Itoa(os.Getpid()) + ".tar"
		out, err := exec.Command("mmdebstrap", "--variant=minbase", "--include="+containerPackages,
			containerSuite, tmp, "http://deb.debian.org/debian").CombinedOutput()
		if err == nil {
			err = os.Chmod(tmp, 0o644)
		}
		if err == nil {
			err = os.Rename(tmp, tarball)
		}
		if err != nil {
			os.Remove(tmp)
			t.Fatalf("mmdebstrap of the container image: %v\n%s", err, out)
		}
	}
	if res := r.podman(t, "import", tarball, containerTag); res.code != 0 {
		t.Fatalf("podman import: %s", res.stderr)
	}
}

// aptCache is the test user's package cache for the builds in podman,
// kept between runs so that only the first one downloads. Rootful podman's
// builds, whose files belong to the real root, have one of their own: in
// the user's, a directory root made first would refuse the user's builds.
func (r *rootless) aptCache(t *testing.T) string {
	t.Helper()
	if r.rootful {
		dir := "/var/cache/vmdb2-test/podman-rootful-apt"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	u, err := user.LookupId(strconv.Itoa(r.uid))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(u.HomeDir, ".cache", "vmdb2-podman")
	if err := asuser.MkdirOwned(dir, r.uid, r.gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// build runs vmdb2 on work/spec.vmdb in the container, as the container's
// root, writing work/out.img; extra are more podman run options. The
// container's /proc is unmasked, without which no user namespace may
// mount a proc of its own.
func (r *rootless) build(t *testing.T, work string, extra ...string) result {
	t.Helper()
	return r.run(t, work, []string{"/opt/vmdb2/vmdb2", "--output", "/work/out.img", "/work/spec.vmdb"}, extra...)
}

// run runs argv in the container with vmdb2 at /opt/vmdb2/vmdb2 and work
// at /work.
func (r *rootless) run(t *testing.T, work string, argv []string, extra ...string) result {
	t.Helper()
	bin := userBinary(t)
	args := []string{"run", "--rm", "--network", "host", "--hostname", "localhost", "--security-opt", "unmask=/proc/*",
		"-v", filepath.Dir(bin) + ":/opt/vmdb2:ro", "-v", work + ":/work", "-v", r.aptCache(t) + ":/cache",
		"-e", "VMDB2_CACHE_DIR=/cache", "-w", "/work"}
	args = append(append(args, extra...), containerTag)
	return r.podman(t, append(args, argv...)...)
}

// cachedDebootstrapSpec is testdata/debootstrap.vmdb with a rootfs cache:
// run with --rootfs-tarball, the first build makes the tarball and a
// second one starts from it.
const cachedDebootstrapSpec = `steps:
  - mkimg: "{{ output }}"
    size: 2G
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - unpack-rootfs: /
  - debootstrap: bookworm
    mirror: http://deb.debian.org/debian
    target: /
    variant: minbase
    unless: rootfs_unpacked
  - apt: install
    tag: /
    recommends: false
    packages:
      - passwd
      - less
    unless: rootfs_unpacked
  - cache-rootfs: /
    unless: rootfs_unpacked
  - chroot: /
    shell: |
      useradd -m -u 1234 alice
  - fstab: /
`

// TestRootlessPodman builds an image from debootstrap, apt and a chroot
// step inside rootless podman with podman's default seccomp profile, run by
// an ordinary user: the namespace's id map is cut along the container's
// own map, and the EPERM the profile gives sethostname is tolerated. The
// cold build leaves a rootfs cache (cache-rootfs), and a second, cached
// build in a new container starts from it (unpack-rootfs).
func TestRootlessPodman(t *testing.T) {
	parallelBuild(t)
	r := newRootless(t)
	r.importImage(t)
	work := writeWorkDir(t, cachedDebootstrapSpec)
	chownTree(t, work, r.uid, r.gid)
	argv := []string{"/opt/vmdb2/vmdb2", "-v", "--rootfs-tarball", "/work/rootfs.tar.zst", "--output", "/work/out.img", "/work/spec.vmdb"}
	for _, build := range []string{"cold", "cached"} {
		start := time.Now()
		res := r.run(t, work, argv)
		t.Logf("%s build in rootless podman: %v", build, time.Since(start).Round(time.Second))
		if res.code != 0 {
			t.Fatalf("%s build failed (%d):\n%s\n%s", build, res.code, res.stdout, res.stderr)
		}
		unpacked := strings.Contains(res.stdout+res.stderr, "Unpacking /work/rootfs.tar.zst")
		if unpacked != (build == "cached") {
			t.Errorf("%s build: unpacked the cache: %v\n%s", build, unpacked, res.stderr)
		}
		checkDebianImage(t, filepath.Join(work, "out.img"))
		if _, err := os.Stat(filepath.Join(work, "rootfs.tar.zst")); err != nil {
			t.Fatalf("the cold build left no rootfs cache: %v", err)
		}
	}
}

// TestRootlessPodmanNoUserns runs the same build with a seccomp profile that
// refuses new user namespaces (as Docker's default does): the build must
// stop before writing anything, naming the seccomp profile and its fix.
func TestRootlessPodmanNoUserns(t *testing.T) {
	parallelBuild(t)
	r := newRootless(t)
	r.importImage(t)
	spec, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "debootstrap.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	work := writeWorkDir(t, string(spec))
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "seccomp-deny-userns.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "seccomp.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	chownTree(t, work, r.uid, r.gid)
	res := r.build(t, work, "--security-opt", "seccomp="+filepath.Join(work, "seccomp.json"))
	if res.code == 0 {
		t.Fatal("the build succeeded without user namespaces")
	}
	if strings.Contains(res.stderr, "did not finish") {
		t.Errorf("the build started:\n%s", res.stderr)
	}
	for _, want := range []string{"seccomp", "--security-opt seccomp=unconfined", "seccompProfile"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("the error does not mention %q:\n%s", want, res.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "out.img")); err == nil {
		t.Error("the output was written")
	}
}

// TestRootfulPodmanDefaultCaps builds in a container of rootful podman
// whose root has only the default capabilities: no --privileged, no
// CAP_SYS_ADMIN, no /dev/loop*.
func TestRootfulPodmanDefaultCaps(t *testing.T) {
	parallelBuild(t)
	r := newRootless(t)
	r.rootful = true
	// podman refuses a runroot path longer than 50 characters.
	run, err := os.MkdirTemp("", "vmdb2-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	r.runtime = run
	r.importImage(t)
	spec, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "debootstrap.vmdb"))
	if err != nil {
		t.Fatal(err)
	}
	work := writeWorkDir(t, string(spec))
	start := time.Now()
	res := r.build(t, work, append([]string{"--cap-drop", "sys_admin"}, callerLimits(t)...)...)
	t.Logf("build in rootful podman: %v", time.Since(start).Round(time.Second))
	if res.code != 0 {
		t.Fatalf("build failed (%d):\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	checkDebianImage(t, filepath.Join(work, "out.img"))
}

// callerLimits are podman run options that keep the open files and
// processes limits within the caller's hard limits: rootful podman 4.3 sets
// 1048576 and 32768 (also with --ulimit host), which a caller without
// CAP_SYS_RESOURCE (the test host is itself a container) cannot grant.
func callerLimits(t *testing.T) []string {
	t.Helper()
	var opts []string
	for _, l := range []struct {
		name     string
		resource int
		podman   uint64
	}{{"nofile", unix.RLIMIT_NOFILE, 1048576}, {"nproc", unix.RLIMIT_NPROC, 32768}} {
		var lim unix.Rlimit
		if err := unix.Getrlimit(l.resource, &lim); err != nil {
			t.Fatal(err)
		}
		n := min(lim.Max, l.podman)
		opts = append(opts, "--ulimit", fmt.Sprintf("%s=%d:%d", l.name, n, n))
	}
	return opts
}

// ownersSpec makes an ext4 image with a directory owned by ids that only a
// namespace of many ids can give.
const ownersSpec = `steps:
  - mkimg: "{{ output }}"
    size: 64M
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: root
  - mkfs: ext4
    partition: root
  - mount: root
  - shell: |
      mkdir "$ROOT/d" && chown 1234:4321 "$ROOT/d"
    root-fs: root
`

// TestRootlessPodmanOrdinaryUser builds as an ordinary user inside rootless
// podman: the container holds only 65537 ids, so the user's subordinate ids
// are two ranges around its own uid, and newuidmap has file capabilities
// instead of its set-user-ID bit, which cannot work without CAP_SYS_ADMIN.
func TestRootlessPodmanOrdinaryUser(t *testing.T) {
	parallelBuild(t)
	r := newRootless(t)
	r.importImage(t)
	work := writeWorkDir(t, ownersSpec)
	if err := os.Chmod(work, 0o777); err != nil {
		t.Fatal(err)
	}
	chownTree(t, work, r.uid, r.gid)
	script := `set -e
useradd -m -u 1000 builder
printf 'builder:1:999\nbuilder:1001:64536\n' | tee /etc/subuid > /etc/subgid
chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap
setcap cap_setuid+ep /usr/bin/newuidmap
setcap cap_setgid+ep /usr/bin/newgidmap
chown builder /work
cd /home/builder
setpriv --reuid=1000 --regid=1000 --init-groups env HOME=/home/builder /opt/vmdb2/vmdb2 --output /work/out.img /work/spec.vmdb
`
	res := r.run(t, work, []string{"sh", "-c", script})
	if res.code != 0 {
		t.Fatalf("build failed (%d):\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	st := debugfs(t, filepath.Join(work, "out.img"), 1<<20, "stat /d")
	if m := statRE.FindStringSubmatch(st); m == nil || m[2] != "1234" || m[3] != "4321" {
		t.Errorf("/d: %v, want owner 1234:4321", m)
	}
}
