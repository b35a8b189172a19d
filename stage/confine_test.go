package stage

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

func TestMain(m *testing.M) {
	userns.Init()
	os.Exit(m.Run())
}

// hostCanary makes a directory and a file outside the stage that nothing
// may touch, and returns a check to run at the end.
func hostCanary(t *testing.T) (dir, file string, check func()) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "canary")
	if err := os.WriteFile(file, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file, func() {
		data, err := os.ReadFile(file)
		if err != nil || string(data) != "original" {
			t.Errorf("host canary changed: %q %v", data, err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("files appeared next to the host canary: %v", entries)
		}
	}
}

func TestConfinement(t *testing.T) {
	canaryDir, canaryFile, check := hostCanary(t)
	root := t.TempDir()
	me := Ownership{Mode: 0o644, UID: os.Getuid(), GID: os.Getgid()}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.Symlink(canaryDir, filepath.Join(root, "abs-dir-link")))
	must(os.Symlink("../../../../../../"+canaryDir, filepath.Join(root, "rel-dir-link")))
	must(os.Symlink(canaryFile, filepath.Join(root, "etc", "file-link")))

	ops := []FileOp{
		{Op: "create-file", Root: root, Path: "../../../../" + canaryFile, Contents: []byte("x"), Perm: 0o644, UID: me.UID, GID: me.GID},
		{Op: "create-file", Root: root, Path: "/abs-dir-link/canary", Contents: []byte("x"), Perm: 0o644, UID: me.UID, GID: me.GID},
		{Op: "create-file", Root: root, Path: "/rel-dir-link/new", Contents: []byte("x"), Perm: 0o644, UID: me.UID, GID: me.GID},
		{Op: "create-file", Root: root, Path: "/etc/file-link", Contents: []byte("x"), Perm: 0o644, UID: me.UID, GID: me.GID},
		{Op: "create-dir", Root: root, Path: "/abs-dir-link/sub", Perm: 0o755, UID: me.UID, GID: me.GID},
		{Op: "copy-file", Root: root, Path: "/rel-dir-link/copied", Src: "/etc/hostname", Perm: 0o644, UID: me.UID, GID: me.GID},
	}
	for _, op := range ops {
		_ = op.apply() // errors are fine; escaping is not
	}
	check()
	// "../../x" is simply /x inside the root.
	op := FileOp{Op: "create-file", Root: root, Path: "../../etc/passwd", Contents: []byte("inside"), Perm: 0o600, UID: me.UID, GID: me.GID}
	must(op.apply())
	if data, _ := os.ReadFile(filepath.Join(root, "etc", "passwd")); string(data) != "inside" {
		t.Errorf("../../etc/passwd was not written at <root>/etc/passwd")
	}
}

func TestFileOps(t *testing.T) {
	root := t.TempDir()
	if testing.Short() && os.Geteuid() != 0 {
		t.Skip("needs the user namespace as an ordinary user")
	}
	uid, gid := 1000, 1001
	mapping, err := userns.Mapping()
	if err != nil {
		t.Fatal(err)
	}
	hostUID := func(id int) int { h, _ := mapping.HostUID(id); return h }
	hostGID := func(id int) int { h, _ := mapping.HostGID(id); return h }
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "a.txt"), []byte("A"), 0o640))
	must(os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o750))
	must(os.WriteFile(filepath.Join(src, "sub", "deeper", "b"), []byte("B"), 0o755))
	must(os.Symlink("a.txt", filepath.Join(src, "link")))

	for _, op := range []FileOp{
		{Op: "create-dir", Path: "/srv/data", Perm: 0o4750, UID: uid, GID: gid},
		{Op: "create-dir", Path: "/srv/data", Perm: 0o750, UID: uid, GID: gid}, // idempotent
		{Op: "create-file", Path: "/srv/data/hello", Contents: []byte("hi\n"), Perm: 0o4755, UID: uid, GID: gid},
		{Op: "copy-file", Path: "/opt/x/y/copied", Src: filepath.Join(src, "a.txt"), Perm: 0o600, UID: uid, GID: gid},
		{Op: "copy-dir", Path: "/usr/share/tree/", Src: src + "/", Perm: 0o755, Umask: 0o022, UID: uid, GID: gid},
	} {
		op.Root = root
		must(Apply(context.Background(), op))
	}
	check := func(p string, mode os.FileMode, wantUID, wantGID int, content string) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Error(err)
			return
		}
		st := fi.Sys().(*syscall.Stat_t)
		wantUID, wantGID = hostUID(wantUID), hostGID(wantGID)
		if fi.Mode() != mode || int(st.Uid) != wantUID || int(st.Gid) != wantGID {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, wantUID, wantGID)
		}
		if content != "" {
			data, _ := os.ReadFile(filepath.Join(root, p))
			if string(data) != content {
				t.Errorf("%s: content %q", p, data)
			}
		}
	}
	rootUID, rootGID := 0, 0
	check("srv", os.ModeDir|0o755, rootUID, rootGID, "")
	check("srv/data", os.ModeDir|0o750, uid, gid, "")
	check("srv/data/hello", os.ModeSetuid|0o755, uid, gid, "hi\n")
	check("opt/x/y", os.ModeDir|0o755, rootUID, rootGID, "")
	check("opt/x/y/copied", 0o600, uid, gid, "A")
	check("usr/share/tree/a.txt", 0o640, uid, gid, "A")
	check("usr/share/tree/sub", os.ModeDir|0o750, uid, gid, "")
	check("usr/share/tree/sub/deeper/b", 0o755, uid, gid, "B")
	check("usr/share/tree/link", os.ModeSymlink|0o777, uid, gid, "")

}
