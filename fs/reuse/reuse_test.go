package reuse

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/internal/canary"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/stage/landlock"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

func TestMain(m *testing.M) {
	userns.Init()
	os.Exit(m.Run())
}

// inProcess runs this package's helpers in the test process: the tests
// run as root, where the build's namespace has the identity mapping.
func inProcess(_ context.Context, c userns.Cmd) error {
	switch c.Helper {
	case helperExt:
		return extHelper(c.HelperArgs)
	case helperFAT:
		return fatHelper(c.HelperArgs)
	}
	return os.ErrInvalid
}

// extImage makes an ext4 filesystem of tree (given as shell commands run
// in an empty directory) and then applies the debugfs commands.
func extImage(t *testing.T, tree string, debugfsCmds ...string) Source {
	t.Helper()
	testreq.NeedRoot(t, "the import gives files owners other than the test's")
	testreq.NeedTools(t, "mke2fs", "debugfs", "dumpe2fs")
	_, err := landlock.ABI()
	testreq.Need(t, testreq.Userns, err)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	sh := exec.Command("sh", "-ec", tree)
	sh.Dir = src
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("making the tree: %v\n%s", err, out)
	}
	img := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", "old", "-d", src, img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if len(debugfsCmds) > 0 {
		cmd := exec.Command("debugfs", "-w", "-f", "-", img)
		cmd.Stdin = strings.NewReader(strings.Join(debugfsCmds, "\n") + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("debugfs: %v\n%s", err, out)
		}
	}
	return Source{Image: img, Size: 32 << 20}
}

func importInto(t *testing.T, src Source) (string, *Result, error) {
	t.Helper()
	info, err := Probe(context.Background(), fstool.Exec, src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != "ext4" || info.Label != "old" || !strings.Contains(info.Options, "-O none,has_journal,") || !strings.Contains(info.Options, "-b 4096") {
		t.Errorf("probe: %+v", info)
	}
	dir := filepath.Join(t.TempDir(), "tree")
	os.Mkdir(dir, 0o755)
	res, err := Import(context.Background(), fstool.Exec, inProcess, src, info, dir, t.TempDir())
	return dir, res, err
}

// TestImportExt: owners, modes (setuid too), extended attributes, symbolic
// links, device nodes and file data come across; hard links and FIFOs are
// reported lost.
func TestImportExt(t *testing.T) {
	src := extImage(t, `mkdir -p etc ro/sub; echo data > etc/f; ln etc/f etc/hard; mkfifo etc/fifo
		ln -s /etc/passwd etc/abs; echo x > ro/sub/in; chmod 0500 ro; chown 1000:2000 etc/f; chmod 4755 etc/f`,
		"cd /etc", "mknod null c 1 3", "cd /", "ea_set /etc/f user.note hello", `ea_set /etc/f trusted.bin "\001\002"`)
	dir, res, err := importInto(t, src)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "etc/f"), &st); err != nil || st.Mode != unix.S_IFREG|0o4755 || st.Uid != 1000 || st.Gid != 2000 {
		t.Errorf("etc/f: %+v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/f")); string(b) != "data\n" {
		t.Errorf("etc/f holds %q", b)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "etc/f"), "user.note", buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("user.note: %q %v", buf[:n], err)
	}
	if n, err := unix.Lgetxattr(filepath.Join(dir, "etc/f"), "trusted.bin", buf); err != nil || string(buf[:n]) != "\x01\x02" {
		t.Errorf("trusted.bin: %q %v", buf[:n], err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "etc/abs")); err != nil || l != "/etc/passwd" {
		t.Errorf("etc/abs -> %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ro")); err != nil || fi.Mode().Perm() != 0o500 {
		t.Errorf("ro: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ro/sub/in")); err != nil {
		t.Errorf("below a 0500 directory: %v", err)
	}
	if len(res.Devices) != 1 || res.Devices[0].Path != "/etc/null" || res.Devices[0].Major != 1 || res.Devices[0].Minor != 3 {
		t.Errorf("devices: %+v", res.Devices)
	}
	if lost := strings.Join(res.Lost, "\n"); !strings.Contains(lost, "/etc/hard (= /etc/f)") && !strings.Contains(lost, "/etc/f (= /etc/hard)") || !strings.Contains(lost, "/etc/fifo") {
		t.Errorf("lost: %v", res.Lost)
	}
	if _, err := os.Lstat(filepath.Join(dir, "lost+found")); err == nil {
		t.Errorf("the empty lost+found was kept")
	}
}

// TestImportRefusesHostile: names holding "/" are refused before anything
// is written; links to the host are copied as links, never followed.
func TestImportRefusesHostile(t *testing.T) {
	h := canary.New(t)
	src := extImage(t, "mkdir etc; ln -s "+h.Dir+" etc/host; ln -s / root; ln -s "+h.File+" secret; echo a > ...; echo b > '.. '",
		`mknod "../../`+filepath.Base(h.Dir)+`" p`)
	dir, _, err := importInto(t, src)
	if err == nil || !strings.Contains(err.Error(), `refusing the entry named "../../host-canary"`) {
		t.Errorf("a name with / imported: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("written before the refusal: %v", ents)
	}
	h.Check(t)

	src = extImage(t, "mkdir etc; ln -s "+h.Dir+" etc/host; ln -s / root; ln -s "+h.File+" secret; echo a > ...; echo b > '.. '")
	dir, _, err = importInto(t, src)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"etc/host": h.Dir, "root": "/", "secret": h.File} {
		if l, err := os.Readlink(filepath.Join(dir, name)); err != nil || l != want {
			t.Errorf("%s -> %q %v", name, l, err)
		}
	}
	for _, name := range []string{"...", ".. "} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	h.Check(t)
}

// TestImportRefusesSparseBomb: a file claiming more than the stage's free
// space is refused before anything is written.
func TestImportRefusesSparseBomb(t *testing.T) {
	src := extImage(t, "echo small > bomb", "sif /bomb size 0xF0000000000")
	dir, _, err := importInto(t, src)
	if err == nil || !strings.Contains(err.Error(), "refusing to import the filesystem: its files claim") || !strings.Contains(err.Error(), "/bomb") {
		t.Fatalf("sparse bomb: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("written before the refusal: %v", ents)
	}
}

func TestParseXattrs(t *testing.T) {
	got, err := parseXattrs("Extended attributes:\n  user.a (3) = \"b\\\"c\"\n  user.q\\040x (2) = 01 ff \n  system.data (0) = \"\"\n")
	if err != nil || len(got) != 2 || string(got[0].Value) != `b"c` || got[1].Name != "user.q x" || string(got[1].Value) != "\x01\xff" {
		t.Errorf("%+v %v", got, err)
	}
	if _, err := parseXattrs("  user.a (4) = \"b\"\n"); err == nil {
		t.Errorf("a length mismatch was accepted")
	}
}

func TestParseLs(t *testing.T) {
	for _, c := range []struct{ out, want string }{
		{"/12/100644/0/0/a/3/\n/13/100644/0/0/a/3/\n", "listed twice"},
		{"/12/100644/0/0/a\n", "a name holding a newline"},
		{"/12/020000/0/0//d/null/0/\n", `refusing the entry named "/d/null"`},
		{"/12/000000/0/0/odd/0/\n", "unknown file type"},
	} {
		if _, _, err := parseLs("/", c.out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %s", c.out, err, c.want)
		}
	}
}

// TestBoundedStopsEndlessListing: a tool that prints without end is
// stopped with a message.
func TestBoundedStopsEndlessListing(t *testing.T) {
	_, err := fstool.Run(context.Background(), bounded(nil), []string{"yes", "a long line of a directory loop"}, nil)
	if err == nil || !strings.Contains(err.Error(), "a directory loop?") {
		t.Errorf("yes: %v", err)
	}
}

// TestImportFAT: a vfat filesystem's tree comes across; its volume id,
// label and geometry are probed.
func TestImportFAT(t *testing.T) {
	testreq.NeedRoot(t, "the import runs as root of the build's namespace")
	testreq.NeedTools(t, "mkfs.vfat", "mcopy", "mdir", "mmd")
	_, err := landlock.ABI()
	testreq.Need(t, testreq.Userns, err)
	tmp := t.TempDir()
	img := filepath.Join(tmp, "fat.img")
	env := append(os.Environ(), mtoolsEnv...)
	for _, args := range [][]string{
		{"mkfs.vfat", "-C", "-F", "16", "-s", "4", "-n", "ESP", "-i", "1234ABCD", img, "16384"},
		{"mmd", "-i", img, "::/EFI"},
		{"sh", "-c", "echo boot > " + tmp + "/grub.cfg && mcopy -i " + img + " " + tmp + "/grub.cfg ::/EFI/grub.cfg"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	src := Source{Image: img, Size: 16 << 20}
	info, err := Probe(context.Background(), fstool.Exec, src)
	if err != nil || info.Type != "vfat" || info.VolumeID != 0x1234ABCD || info.Label != "ESP" || info.Options != "-F 16 -s 4" {
		t.Fatalf("probe: %+v %v", info, err)
	}
	dir := filepath.Join(tmp, "tree")
	os.Mkdir(dir, 0o755)
	res, err := Import(context.Background(), fstool.Exec, inProcess, src, info, dir, tmp)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "EFI/grub.cfg")); err != nil || string(b) != "boot\n" {
		t.Errorf("EFI/grub.cfg: %q %v", b, err)
	}
	if res.Bytes != 5 {
		t.Errorf("%d bytes imported, want 5", res.Bytes)
	}
}
