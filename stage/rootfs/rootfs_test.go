package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

func TestMain(m *testing.M) {
	userns.Init()
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

var (
	availOnce sync.Once
	availErr  error
)

// needTree skips the test under -short, and as an ordinary user when the
// namespace is unusable (unless re-run by TestAsOrdinaryUser: it then
// fails).
func needTree(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root or a user namespace: skipped with -short")
	}
	if os.Geteuid() == 0 {
		return
	}
	availOnce.Do(func() { availErr = userns.Available() })
	if availErr != nil {
		if asuser.Active() {
			t.Fatal(availErr)
		}
		t.Skip(availErr)
	}
}

// tmpDir is a t.TempDir whose contents, owned by mapped ids, can be removed.
func tmpDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rootfs-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := userns.RemoveAll(d); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	d := filepath.Join(parts...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// ---- the reference tree, as a tar stream made with archive/tar ----

type ent struct {
	typ      byte
	name     string
	mode     int64
	uid, gid int
	data     []byte
	link     string
	xattr    map[string]string
	maj, min int64
}

// capNetRaw is a version 2 security.capability value: cap_net_raw+ep.
var capNetRaw = string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

const refEpoch = 1700000000

func refTree(uid, gid int) []ent {
	big := make([]byte, 3<<20+17)
	rand.New(rand.NewSource(1)).Read(big)
	long := "./usr/share/" + strings.Repeat("long-name-", 14) + "end"
	d := func(name string, mode int64, uid, gid int) ent {
		return ent{typ: tar.TypeDir, name: name, mode: mode, uid: uid, gid: gid}
	}
	f := func(name string, mode int64, uid, gid int, data string) ent {
		return ent{typ: tar.TypeReg, name: name, mode: mode, uid: uid, gid: gid, data: []byte(data)}
	}
	l := func(name, target string) ent {
		return ent{typ: tar.TypeSymlink, name: name, mode: 0o777, link: target, uid: uid, gid: gid}
	}
	r, g := uid, gid // "root" of the tree
	es := []ent{
		d("./", 0o755, r, g),
		l("./bin", "usr/bin"),
		d("./boot/", 0o755, r, g),
		d("./boot/efi/", 0o700, r, g),
		d("./boot/efi/EFI/", 0o700, r, g),
		d("./boot/efi/EFI/BOOT/", 0o700, r, g),
		f("./boot/efi/EFI/BOOT/BOOTX64.EFI", 0o700, r, g, "MZ not really"),
		d("./etc/", 0o755, r, g),
		f("./etc/passwd", 0o644, r, g, "root:x:0:0:root:/root:/bin/bash\n"),
		f("./etc/shadow", 0o640, r, g+42, "root:*:19000:0:99999:7:::\n"),
		l("./etc/localtime", "/usr/share/zoneinfo/UTC"),
		l("./etc/escape", "../../../../../../../../tmp"),
		l("./etc/dangling", "/nonexistent/x"),
		d("./run/", 0o755, r, g),
		{typ: tar.TypeFifo, name: "./run/initctl", mode: 0o600, uid: r, gid: g},
		d("./tmp/", 0o1777, r, g),
		d("./usr/", 0o755, r, g),
		d("./usr/bin/", 0o755, r, g),
		f("./usr/bin/su", 0o4755, r, g, "setuid"),
		f("./usr/bin/wall", 0o2755, r, g+5, "setgid tty"),
		{typ: tar.TypeReg, name: "./usr/bin/ping", mode: 0o755, uid: r, gid: g, data: []byte("ping"),
			xattr: map[string]string{"security.capability": capNetRaw}},
		f("./usr/bin/perl", 0o755, r, g, "perl"),
		{typ: tar.TypeLink, name: "./usr/bin/perl5.36", link: "./usr/bin/perl"},
		d("./usr/share/", 0o755, r, g),
		d("./usr/share/doc with space/", 0o755, r, g),
		{typ: tar.TypeReg, name: "./usr/share/doc with space/fïlé ü ☃.txt", mode: 0o644, uid: r, gid: g, data: []byte("unicode"),
			xattr: map[string]string{"user.comment": "hello", "user.empty": ""}},
		f(long, 0o644, r, g, "long"),
		d("./var/", 0o755, r, g),
		d("./var/mail/", 0o2775, r, g+8),
		{typ: tar.TypeReg, name: "./var/big", mode: 0o644, uid: r + 1000, gid: g + 1000, data: big},
		f("./var/empty", 0o600, r, g, ""),
	}
	if devices {
		es = append(es,
			d("./dev/", 0o755, r, g),
			ent{typ: tar.TypeChar, name: "./dev/null", mode: 0o666, uid: r, gid: g, maj: 1, min: 3},
			ent{typ: tar.TypeChar, name: "./dev/console", mode: 0o600, uid: r, gid: g + 5, maj: 5, min: 1},
			ent{typ: tar.TypeBlock, name: "./dev/loop0", mode: 0o660, uid: r, gid: g + 6, maj: 7, min: 0},
			ent{typ: tar.TypeLink, name: "./dev/null-again", link: "./dev/null"},
		)
	}
	return es
}

// devices says whether refTree holds device nodes (not for the in-process
// tests as an ordinary user).
var devices = true

func writeRef(t testing.TB, file string, es []ent) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, e := range es {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.data)), Linkname: e.link, Devmajor: e.maj, Devminor: e.min,
			ModTime: time.Unix(refEpoch+int64(i)*60, 0), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		for k, v := range e.xattr {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(e.data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---- snapshots of trees ----

// snapshot describes every entry below root, one line each, with owners as
// seen inside the namespace.
func snapshot(t *testing.T, root string, withXattrs bool) map[string]string {
	t.Helper()
	m, _ := userns.Mapping()
	type rec struct {
		line string
		ino  uint64
		dir  bool
		nl   uint64
	}
	recs := map[string]*rec{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		uid, gid := int(st.Uid), int(st.Gid)
		if os.Geteuid() != 0 {
			uid, _ = m.InsideUID(uid)
			gid, _ = m.InsideGID(gid)
		}
		var sum, link string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := readAsOwner(p)
			if err != nil {
				return err
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(b))[:16]
		case unix.S_IFLNK:
			link, _ = os.Readlink(p)
		}
		line := fmt.Sprintf("type=%o mode=%04o uid=%d gid=%d size=%d sha=%s mtime=%d link=%q rdev=%d:%d",
			st.Mode&unix.S_IFMT, st.Mode&0o7777, uid, gid, st.Size, sum, st.Mtim.Sec, link, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			line = fmt.Sprintf("type=%o mode=%04o uid=%d gid=%d mtime=%d", st.Mode&unix.S_IFMT, st.Mode&0o7777, uid, gid, st.Mtim.Sec)
		}
		if withXattrs {
			x, err := readXattrs(p)
			if err != nil {
				return err
			}
			var ks []string
			for k, v := range x {
				if k == "security.capability" && os.Geteuid() != 0 {
					v = "(v3 with a rootid, as seen from the host)"
				}
				ks = append(ks, fmt.Sprintf("%s=%q", k, v))
			}
			sort.Strings(ks)
			line += " xattrs=" + strings.Join(ks, ",")
		}
		recs[rel] = &rec{line: line, ino: st.Ino, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR, nl: uint64(st.Nlink)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// hard-link identity: the first name of each multiply-linked inode
	first := map[uint64]string{}
	var names []string
	for n := range recs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]string{}
	for _, n := range names {
		r := recs[n]
		if !r.dir && r.nl > 1 {
			if _, ok := first[r.ino]; !ok {
				first[r.ino] = n
			}
			r.line += " links=" + first[r.ino]
		}
		out[n] = r.line
	}
	return out
}

// readAsOwner reads a file; as an ordinary user, files of mapped ids that
// the user cannot read (etc/shadow) are read inside the namespace.
func readAsOwner(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err == nil || !errors.Is(err, fs.ErrPermission) || os.Geteuid() == 0 {
		return b, err
	}
	var out bytes.Buffer
	err = userns.Run(context.Background(), userns.Cmd{Argv: []string{"cat", p}, Stdout: &out, Dir: "/"})
	return out.Bytes(), err
}

func sameTree(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	bad := 0
	for _, n := range names {
		if want[n] != got[n] {
			bad++
			if bad <= 20 {
				t.Errorf("%s: %q:\n\twant %s\n\tgot  %s", what, n, want[n], got[n])
			}
		}
	}
}

// headers lists the members of a tarball, one normalised line each.
func headers(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := decompressor(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	out := map[string]string{}
	byName := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if h.Typeflag == tar.TypeLink {
			// a hard link to a device is compared as the device (a
			// namespace records it as one in the manifest)
			tgt := byName[strings.TrimPrefix(h.Linkname, "./")]
			if tgt != nil && (tgt.Typeflag == tar.TypeChar || tgt.Typeflag == tar.TypeBlock) {
				c := *tgt
				c.Name = h.Name
				h = &c
			}
		}
		if h.Typeflag == tar.TypeLink {
			// only the target of a hard link matters
			h.Mode, h.Uid, h.Gid, h.ModTime = 0, 0, 0, time.Unix(0, 0)
		}
		byName[name] = h
		x, _ := xattrsOf(h)
		var ks []string
		for k, v := range x {
			ks = append(ks, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(ks)
		out[name] = fmt.Sprintf("type=%c mode=%04o uid=%d gid=%d size=%d sha=%x mtime=%d link=%q dev=%d:%d xattrs=%s",
			h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, sha256.Sum256(b), h.ModTime.Unix(), strings.TrimPrefix(h.Linkname, "./"),
			h.Devmajor, h.Devminor, strings.Join(ks, ","))
	}
	return out
}

var formats = []string{"rootfs.tar", "rootfs.tar.gz", "rootfs.tar.xz", "rootfs.tar.zst"}

// ---- unit tests (also with -short) ----

func TestFormatFor(t *testing.T) {
	for name, want := range map[string]Format{
		"x.tar.gz": Gzip, "X.TGZ": Gzip, "x.tar.xz": Xz, "x.txz": Xz, "x.tar.zst": Zstd, "x.tar.zstd": Zstd,
		"x.tar.bz2": Bzip2, "x.tar": Plain, "rootfs": Plain, "x.gz.tar": Plain,
	} {
		if got := FormatFor(name); got != want {
			t.Errorf("FormatFor(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSniffWhatWeWrite(t *testing.T) {
	for _, f := range []Format{Plain, Gzip, Xz, Zstd} {
		var b bytes.Buffer
		w, err := compressor(f, &b)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, strings.Repeat("data ", 1000))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := Sniff(b.Bytes()); got != f {
			t.Errorf("Sniff(%v output) = %v", f, got)
		}
		r, _, err := decompressor(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(back) != strings.Repeat("data ", 1000) {
			t.Errorf("%v: round trip failed: %v", f, err)
		}
	}
}

// TestCompressorsDeterministic checks that the output does not depend on
// the number of threads (xz) or encoder goroutines (zstd).
func TestCompressorsDeterministic(t *testing.T) {
	// real binaries: xz -6 takes about a second per MB on a busy 2-CPU
	// machine, so the input is small and xz's blocks are made small too
	xzBlockSize = "256KiB"
	defer func() { xzBlockSize = "16MiB" }()
	var data []byte
	bins, _ := filepath.Glob("/usr/bin/*")
	for _, b := range bins {
		if d, err := os.ReadFile(b); err == nil {
			data = append(data, d...)
		}
		if len(data) > 3<<19 {
			data = data[:3<<19]
			break
		}
	}
	for _, f := range []Format{Gzip, Xz, Zstd} {
		var a, b bytes.Buffer
		for _, out := range []*bytes.Buffer{&a, &b} {
			w, err := compressor(f, out)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(data); off += 100003 { // odd write sizes
				end := min(off+100003, len(data))
				w.Write(data[off:end])
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%v: two compressions differ", f)
		}
	}
	if hostXz == "" {
		t.Skip("no xz program: thread-count independence not checked")
	}
	var outs [][]byte
	for _, args := range [][]string{xzArgs(), xzArgsThreads(2), xzArgsThreads(5)} {
		cmd := exec.Command(hostXz, args...)
		cmd.Stdin = bytes.NewReader(data)
		b, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[0], outs[2]) {
		t.Errorf("xz output depends on the thread count")
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"./": "", ".": "", "/": "", "./etc/": "etc", "etc/shadow": "etc/shadow", "/abs/x": "abs/x",
		"./a//b/./c": "a/b/c", "//x": "x",
	} {
		got, err := cleanName(in)
		if err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../x", "./../x", "a/../../x", "a/..", "/.."} {
		if got, err := cleanName(in); err == nil {
			t.Errorf("cleanName(%q) = %q, want an error", in, got)
		}
	}
}

func TestManifest(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "devices.json")
	devs := []Device{
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, Mode: "0666", Mtime: 5},
		{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0, Mode: "0660", GID: 6},
	}
	if err := WriteManifest(file, devs); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	want := `{"version":1,"devices":[
{"path":"/dev/loop0","type":"b","major":7,"minor":0,"mode":"0660","uid":0,"gid":6,"mtime":0},
{"path":"/dev/null","type":"c","major":1,"minor":3,"mode":"0666","uid":0,"gid":0,"mtime":5}
]}
`
	if string(b) != want {
		t.Errorf("manifest:\n%s\nwant:\n%s", b, want)
	}
	got, err := ReadManifest(file)
	if err != nil || len(got) != 2 || got[1] != devs[0] {
		t.Errorf("ReadManifest: %v %v", got, err)
	}
	if m, _ := got[0].InodeMode(); m != 0o060660 {
		t.Errorf("InodeMode = %o", m)
	}
	if got, err := ReadManifest(filepath.Join(dir, "missing")); err != nil || got != nil {
		t.Errorf("missing manifest: %v %v", got, err)
	}
	for _, bad := range []string{`{"version":2,"devices":[]}`, `{"version":1,"devices":[{"path":"dev/x","type":"c","mode":"0600"}]}`,
		`{"version":1,"devices":[{"path":"/dev/x","type":"p","mode":"0600"}]}`, `{"version":1,"devices":[{"path":"/dev/x","type":"c","mode":"rw"}]}`} {
		os.WriteFile(file, []byte(bad), 0o644)
		if _, err := ReadManifest(file); err == nil {
			t.Errorf("ReadManifest accepted %s", bad)
		}
	}
}

func TestLibarchiveXattrs(t *testing.T) {
	h := &tar.Header{PAXRecords: map[string]string{
		"LIBARCHIVE.xattr.user.a%20b": "aGVsbG8", // "hello", unpadded as bsdtar writes it
		"SCHILY.xattr.user.c":         "x",
		"mtime":                       "1",
	}}
	m, err := xattrsOf(h)
	if err != nil || string(m["user.a b"]) != "hello" || string(m["user.c"]) != "x" || len(m) != 2 {
		t.Errorf("xattrsOf = %q, %v", m, err)
	}
}

// ownIDs runs f with in-process extraction and no devices, so that the tree
// tests run as any user (owners are then the caller's own ids).
func ownIDs(t *testing.T) (uid, gid int) {
	if os.Geteuid() != 0 {
		forceInProcess, devices = true, false
		t.Cleanup(func() { forceInProcess, devices = false, true })
	}
	return os.Getuid(), os.Getgid()
}

func TestMissingTarball(t *testing.T) {
	err := Unpack(context.Background(), filepath.Join(t.TempDir(), "none.tar.gz"), t.TempDir(), UnpackOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Unpack of a missing tarball: %v, want fs.ErrNotExist", err)
	}
}

// TestRoundTripOwnIDs packs and unpacks a tree of the caller's own files in
// every format, in-process (runs with -short, as any user).
func TestRoundTripOwnIDs(t *testing.T) {
	uid, gid := ownIDs(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.tar")
	es := refTree(uid, gid)
	// as an ordinary user, group ids other than one's own are refused
	for i := range es {
		if os.Geteuid() != 0 && es[i].typ != tar.TypeLink {
			es[i].uid, es[i].gid = uid, gid
			delete(es[i].xattr, "security.capability")
		}
	}
	writeRef(t, ref, es)
	a := mkdir(t, dir, "a")
	if err := Unpack(context.Background(), ref, a, UnpackOptions{DeviceManifest: filepath.Join(dir, "a.dev")}); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, a, true)
	for _, name := range formats {
		tb := filepath.Join(dir, name)
		if err := Pack(context.Background(), a, []string{".", "boot/efi"}, tb, PackOptions{DeviceManifest: filepath.Join(dir, "a.dev")}); err != nil {
			t.Fatal(err)
		}
		b := mkdir(t, dir, name+".d")
		if err := Unpack(context.Background(), tb, b, UnpackOptions{}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, name, want, snapshot(t, b, true))
	}
}

func TestPackAtomic(t *testing.T) {
	ownIDs(t)
	dir := t.TempDir()
	tree := mkdir(t, dir, "tree", "etc")
	os.WriteFile(filepath.Join(tree, "f"), []byte("x"), 0o644)
	tb := filepath.Join(dir, "cache.tar.gz")
	os.WriteFile(tb, []byte("old"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Pack(ctx, filepath.Dir(tree), nil, tb, PackOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Pack with a cancelled context: %v", err)
	}
	if err := Pack(context.Background(), filepath.Join(dir, "missing"), nil, tb, PackOptions{}); err == nil {
		t.Errorf("Pack of a missing tree succeeded")
	}
	if err := Pack(context.Background(), filepath.Dir(tree), []string{"etc/f"}, tb, PackOptions{}); err == nil {
		t.Errorf("Pack of a file as a directory succeeded")
	}
	if b, _ := os.ReadFile(tb); string(b) != "old" {
		t.Errorf("a failed Pack changed the tarball")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("a failed Pack left files behind: %v", ents)
	}
}

// TestHostile unpacks archives that try to write outside the target.
func TestHostile(t *testing.T) {
	uid, gid := ownIDs(t)
	base := tmpDir(t)
	canary := mkdir(t, base, "host-canary-dir")
	os.WriteFile(filepath.Join(canary, "keep"), []byte("keep"), 0o644)
	reg := func(name, data string) ent {
		return ent{typ: tar.TypeReg, name: name, mode: 0o644, uid: uid, gid: gid, data: []byte(data)}
	}
	sym := func(name, target string) ent {
		return ent{typ: tar.TypeSymlink, name: name, mode: 0o777, uid: uid, gid: gid, link: target}
	}
	dir := func(name string) ent { return ent{typ: tar.TypeDir, name: name, mode: 0o755, uid: uid, gid: gid} }
	cases := []struct {
		name   string
		es     []ent
		wantOK bool
	}{
		{"dotdot", []ent{reg("../escape", "x")}, false},
		{"dotdot-inside", []ent{dir("a/"), reg("a/../../escape", "x")}, false},
		{"absolute", []ent{reg(canary+"/abs", "x"), reg("/escape", "x")}, true},
		{"symlink-abs", []ent{sym("evil", canary), reg("evil/file", "x")}, false},
		{"symlink-rel", []ent{sym("evil", "../../../../../../../../../../"+canary), reg("evil/file", "x")}, false},
		{"symlink-dir", []ent{sym("evil", canary), dir("evil/sub/"), reg("evil/sub/file", "x")}, false},
		{"symlink-replaced", []ent{sym("evil", canary+"/keep"), reg("evil", "overwritten")}, true},
		{"hardlink-out", []ent{{typ: tar.TypeLink, name: "hl", link: "../" + filepath.Base(canary) + "/keep"}}, false},
		{"hardlink-abs", []ent{{typ: tar.TypeLink, name: "hl", link: canary + "/keep"}}, false},
		{"hardlink-via-symlink", []ent{sym("evil", canary), {typ: tar.TypeLink, name: "hl", link: "evil/keep"}}, false},
		{"symlink-root", []ent{sym("evil", "/"), reg("evil"+canary+"/keep", "overwritten")}, true},
		{"symlink-parent-chain", []ent{dir("a/"), sym("a/up", ".."), sym("a/up2", "up/.."), reg("a/up2/up/escape", "x")}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mkdir(t, base, c.name)
			ref := filepath.Join(d, "evil.tar")
			writeRef(t, ref, c.es)
			root := mkdir(t, d, "root")
			err := Unpack(context.Background(), ref, root, UnpackOptions{})
			t.Logf("Unpack: %v", err)
			if (err == nil) != c.wantOK {
				t.Errorf("Unpack error = %v, want success %v", err, c.wantOK)
			}
			ents, _ := os.ReadDir(canary)
			if b, _ := os.ReadFile(filepath.Join(canary, "keep")); len(ents) != 1 || string(b) != "keep" {
				t.Errorf("the canary directory was written to: %v", ents)
			}
			ents, _ = os.ReadDir(d)
			if len(ents) != 2 {
				t.Errorf("something was written next to the target: %v", ents)
			}
			if _, err := os.Lstat(filepath.Join(base, "escape")); err == nil {
				t.Errorf("escape created next to the target's parent")
			}
			if _, err := os.Lstat("/escape"); err == nil {
				t.Errorf("/escape created")
			}
		})
	}
}
