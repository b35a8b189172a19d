package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// fileStepsSpec builds a GPT image with a vfat ESP mounted at /boot/efi
// inside an ext4 root, and uses every file step.
const fileStepsSpec = `steps:
  - mkimg: "{{ output }}"
    size: 200M
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 65MiB
    tag: efi
  - set_part_flag: "{{ output }}"
    tag: efi
    flag: esp
  - mkpart: primary
    device: "{{ output }}"
    start: 65MiB
    end: 100%
    tag: /
  - kpartx: "{{ output }}"
  - mkfs: vfat
    partition: efi
    label: EFI
  - mkfs: ext4
    partition: /
    label: rootfs
  - mount: /
  - mount: efi
    mount-on: /
    dirname: /boot/efi
  - create-dir: /etc
  - create-dir: /home/user
    uid: 1000
    gid: 1000
    perm: 0700
  - create-file: /etc/hostname
    contents: |
      testhost
  - create-file: /etc/secret
    contents: s3cret
    perm: 0640
    gid: 42
  - create-file: /etc/motd
    trailing-newline: yes
    contents: |
      welcome
  - create-dir: /boot/efi/EFI/BOOT
  - create-file: /boot/efi/EFI/BOOT/grub.cfg
    contents: set timeout=1
  - copy-file: /boot/efi/EFI/BOOT/A long file name.txt
    src: src/a.txt
  - copy-file: /usr/local/bin/tool
    src: src/a.txt
    perm: 04755
  - copy-dir: /srv/tree
    src: src
    uid: 1000
    gid: 1000
  - create-file: ../../../../../../ESCAPE
    contents: stays inside
  - fstab: /
`

// checkTools skips image-building tests under -short and fails them,
// with the fix, when the checking tools are missing.
func checkTools(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds images; skipped with -short")
	}
	testreq.NeedTools(t, tools...)
}

func sbin(tool string) string {
	if p, err := exec.LookPath(tool); err == nil {
		return p
	}
	return "/usr/sbin/" + tool
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}

func writeWorkDir(t *testing.T, spec string) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(spec), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "src", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "src", "a.txt"), []byte("hello\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "src", "sub", "b"), []byte("deep\n"), 0o600))
	must(os.Mkdir(filepath.Join(dir, "tmp"), 0o755))
	return dir
}

// debugfs runs one debugfs request on the ext filesystem at offset.
func debugfs(t *testing.T, img string, offset int64, request string) string {
	t.Helper()
	out, err := exec.Command(sbin("debugfs"), "-R", request, fmt.Sprintf("%s?offset=%d", img, offset)).Output()
	if err != nil {
		t.Fatalf("debugfs %s: %v", request, err)
	}
	return string(out)
}

var statRE = regexp.MustCompile(`(?s)Mode:\s+(\d+)\s.*?User:\s+(\d+)\s+Group:\s+(\d+)`)

func checkFileStepsImage(t *testing.T, dir string) {
	t.Helper()
	img := filepath.Join(dir, "out.img")
	const rootOff, espOff = 65 << 20, 1 << 20
	out, err := exec.Command(sbin("e2fsck"), "-fn", fmt.Sprintf("%s?offset=%d", img, rootOff)).CombinedOutput()
	if err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	for _, c := range []struct{ path, mode, uid, gid, content string }{
		{"/etc/hostname", "0644", "0", "0", "testhost"},
		{"/etc/secret", "0640", "0", "42", "s3cret"},
		{"/etc/motd", "0644", "0", "0", "welcome\n"},
		{"/home/user", "0700", "1000", "1000", ""},
		{"/usr/local/bin/tool", "04755", "0", "0", "hello\n"},
		{"/srv/tree/a.txt", "0644", "1000", "1000", "hello\n"},
		{"/srv/tree/sub/b", "0600", "1000", "1000", "deep\n"},
		{"/ESCAPE", "0644", "0", "0", "stays inside"},
	} {
		st := debugfs(t, img, rootOff, "stat "+c.path)
		m := statRE.FindStringSubmatch(st)
		if m == nil || m[1] != c.mode || m[2] != c.uid || m[3] != c.gid {
			t.Errorf("%s: got %v, want mode %s owner %s:%s\n%s", c.path, m, c.mode, c.uid, c.gid, st)
		}
		if c.content != "" {
			if got := debugfs(t, img, rootOff, "cat "+c.path); got != c.content {
				t.Errorf("%s: content %q, want %q", c.path, got, c.content)
			}
		}
	}
	fstab := debugfs(t, img, rootOff, "cat /etc/fstab")
	if !regexp.MustCompile(`^UUID=[0-9a-f-]{36} / ext4 defaults 0 1\nUUID=[0-9A-F]{4}-[0-9A-F]{4} /boot/efi vfat defaults 0 1\n$`).MatchString(fstab) {
		t.Errorf("fstab:\n%s", fstab)
	}
	if ls := debugfs(t, img, rootOff, "ls /boot/efi"); strings.Contains(ls, "EFI") {
		t.Errorf("the ESP's files leaked into the root filesystem: %s", ls)
	}
	// The ESP: fsck.vfat has no offset option, so check a copy.
	esp := filepath.Join(t.TempDir(), "esp.img")
	if out, err := exec.Command("dd", "if="+img, "of="+esp, "bs=1M", "skip=1", "count=64", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	if out, err := exec.Command(sbin("fsck.vfat"), "-n", esp).CombinedOutput(); err != nil || strings.Contains(string(out), "differences") {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
	for path, want := range map[string]string{"::/EFI/BOOT/grub.cfg": "set timeout=1", "::/EFI/BOOT/A long file name.txt": "hello\n"} {
		out, err := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", img, espOff), path).Output()
		if err != nil || string(out) != want {
			t.Errorf("mtype %s: %q %v", path, out, err)
		}
	}
	// The volume label and the fstab UUID agree with what blkid-like tools see.
	info, _ := exec.Command("minfo", "-i", fmt.Sprintf("%s@@%d", img, espOff)).Output()
	if !strings.Contains(string(info), `disk label="EFI        "`) {
		t.Errorf("minfo: %s", info)
	}
	serial := regexp.MustCompile(`serial number: ([0-9A-F]{4})([0-9A-F]{4})`).FindStringSubmatch(string(info))
	if serial == nil || !strings.Contains(fstab, "UUID="+serial[1]+"-"+serial[2]+" /boot/efi") {
		t.Errorf("fstab does not name the ESP's serial %v:\n%s", serial, fstab)
	}
}

func noStageLeft(t *testing.T, tmp string) {
	t.Helper()
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		t.Errorf("left behind in TMPDIR: %s", e.Name())
	}
}

// TestFileStepsImage builds the image as root and as an ordinary user,
// checks it with e2fsck, debugfs, fsck.vfat and mtools, and compares the
// two builds byte for byte.
func TestFileStepsImage(t *testing.T) {
	checkTools(t, "e2fsck", "debugfs", "fsck.vfat", "mtype", "minfo", "mke2fs")
	env := []string{"SOURCE_DATE_EPOCH=1700000000"}

	rootDir := writeWorkDir(t, fileStepsSpec)
	cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img")
	cmd.Dir = rootDir
	cmd.Env = append(os.Environ(), append(env, "TMPDIR="+filepath.Join(rootDir, "tmp"))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build as %d: %v\n%s", os.Geteuid(), err, out)
	}
	checkFileStepsImage(t, rootDir)
	noStageLeft(t, filepath.Join(rootDir, "tmp"))
	if _, err := os.Stat("/ESCAPE"); err == nil {
		t.Errorf("/ESCAPE was written on the host")
	}

	if os.Geteuid() != 0 {
		return
	}
	uid, gid := ordinaryUser(t)
	userDir := writeWorkDir(t, fileStepsSpec)
	chownTree(t, userDir, uid, gid)
	// No TMPDIR: the stage goes where vmdb2 chooses (RAM when it fits).
	r := runAs(t, uid, gid, userDir, append(env, "TMPDIR=", "VMDB2_STAGE_DIR="), userBinary(t), "spec.vmdb", "--output", "out.img", "--log", "build.log")
	if r.code != 0 {
		t.Fatalf("build as %s: exit %d\n%s%s", testUser, r.code, r.stdout, r.stderr)
	}
	checkFileStepsImage(t, userDir)
	log, _ := os.ReadFile(filepath.Join(userDir, "build.log"))
	m := regexp.MustCompile(`stage directory (\S+) \((.*)\)`).FindSubmatch(log)
	if m == nil {
		t.Fatalf("the log does not say where the stage was:\n%s", log)
	}
	t.Logf("stage of the ordinary user's build: %s (%s)", m[1], m[2])
	if _, err := os.Stat(string(m[1])); err == nil {
		t.Errorf("stage %s left behind", m[1])
	}
	if ok, _ := regexp.Match(`^/dev/shm/`, m[1]); !ok && strings.HasPrefix(string(m[2]), "in memory") {
		t.Errorf("stage %s is not in /dev/shm though the log says %s", m[1], m[2])
	}
	if a, b := fileSHA(t, filepath.Join(rootDir, "out.img")), fileSHA(t, filepath.Join(userDir, "out.img")); a != b {
		t.Errorf("root and ordinary-user builds differ: %s vs %s", a, b)
	}
}

// TestSeedChangesIDsOnly: another --seed changes the identifiers and, for
// these small filesystems, nothing else that fstab shows.
func TestSeedChangesIDs(t *testing.T) {
	checkTools(t, "sfdisk", "mke2fs", "debugfs")
	ids := func(seed string) (string, string) {
		dir := writeWorkDir(t, fileStepsSpec)
		args := []string{"spec.vmdb", "--output", "out.img"}
		if seed != "" {
			args = append(args, "--seed", seed)
		}
		cmd := exec.Command(binary, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "TMPDIR="+filepath.Join(dir, "tmp"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		sf := exec.Command(sbin("sfdisk"), "-d", "out.img")
		sf.Dir = dir
		table, _ := sf.Output()
		return string(table), debugfs(t, filepath.Join(dir, "out.img"), 65<<20, "cat /etc/fstab")
	}
	t1, f1 := ids("")
	t2, f2 := ids("")
	t3, f3 := ids("another seed")
	if t1 != t2 || f1 != f2 {
		t.Errorf("the default seed is not stable")
	}
	if t1 == t3 || f1 == f3 {
		t.Errorf("--seed did not change the identifiers")
	}
	strip := regexp.MustCompile(`(?i)(label-id: |uuid=|UUID=)[0-9a-f-]+`)
	if strip.ReplaceAllString(t1, "$1X") != strip.ReplaceAllString(t3, "$1X") || strip.ReplaceAllString(f1, "$1X") != strip.ReplaceAllString(f3, "$1X") {
		t.Errorf("--seed changed more than identifiers:\n%s\n%s", t1, t3)
	}
}

// TestCheckReproducible: --check-reproducible says yes for a reproducible
// spec and names the differing file for one that writes the time.
func TestCheckReproducible(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs", "busybox")
	dir := writeWorkDir(t, fileStepsSpec)
	r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img", "--check-reproducible")
	if r.code != 0 || !strings.Contains(r.stdout, "reproducible: both builds of spec.vmdb gave identical images") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".vmdb2-check-*")); len(left) > 0 {
		t.Errorf("the second image was kept although identical: %v", left)
	}
	spec := strings.Replace(targetSpec, "  - chroot: /\n", "  - shell: date +%N > \"$ROOT/etc/nanoseconds\"\n    root-fs: /\n  - chroot: /\n", 1)
	dir = writeWorkDir(t, spec)
	r = runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img", "--check-reproducible")
	if r.code != 1 || !strings.Contains(r.stdout, "NOT reproducible") || !strings.Contains(r.stdout, "/etc/nanoseconds") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
