package rootfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestTree unpacks the reference tree (owners 0:42, setuid and setgid
// files, a capability, user xattrs, devices, a fifo, hard links, symlinks
// pointing outside, unicode names) as root or as root of the namespace,
// packs it in every format and unpacks that again.
func TestTree(t *testing.T) {
	needTree(t)
	dir := tmpDir(t)
	ref := filepath.Join(dir, "ref.tar")
	writeRef(t, ref, refTree(0, 0))
	a := mkdir(t, dir, "a")
	manA := filepath.Join(dir, "a.devices")
	if err := Unpack(context.Background(), ref, a, UnpackOptions{DeviceManifest: manA}); err != nil {
		t.Fatal(err)
	}
	devs, err := ReadManifest(manA)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if len(devs) != 0 {
			t.Errorf("root recorded devices instead of creating them: %v", devs)
		}
	} else if len(devs) != 4 {
		t.Errorf("devices recorded in the namespace: %v, want 4", devs)
	}
	want := snapshot(t, a, true)
	if !strings.Contains(want["etc/shadow"], "mode=0640 uid=0 gid=42") || !strings.Contains(want["usr/bin/su"], "mode=4755") ||
		!strings.Contains(want["usr/bin/wall"], "mode=2755 uid=0 gid=5") || !strings.Contains(want["usr/bin/ping"], "security.capability") ||
		!strings.Contains(want["var/mail"], "mode=2775 uid=0 gid=8") || !strings.Contains(want["tmp"], "mode=1777") {
		t.Errorf("unpacked tree lacks owners, modes or xattrs:\n%s", dump(want))
	}
	if os.Geteuid() == 0 && !strings.Contains(want["dev/null"], "rdev=1:3") {
		t.Errorf("dev/null: %s", want["dev/null"])
	}
	refH := headers(t, ref)
	for _, name := range formats {
		tb := filepath.Join(dir, name)
		if err := Pack(context.Background(), a, []string{".", "boot/efi"}, tb, PackOptions{DeviceManifest: manA}); err != nil {
			t.Fatal(err)
		}
		// the tarball holds exactly what the reference held, devices
		// included even when they were only in the manifest
		got := headers(t, tb)
		sameTree(t, name+" members", refH, got)
		b := mkdir(t, dir, name+".d")
		manB := filepath.Join(dir, name+".devices")
		if err := Unpack(context.Background(), tb, b, UnpackOptions{DeviceManifest: manB}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, name+" tree", want, snapshot(t, b, true))
		mb, _ := os.ReadFile(manB)
		ma, _ := os.ReadFile(manA)
		if !bytes.Equal(ma, mb) {
			t.Errorf("%s: device manifests differ:\n%s\n%s", name, ma, mb)
		}
	}
}

func dump(m map[string]string) string {
	var b strings.Builder
	for k, v := range m {
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	return b.String()
}

// TestReproducible packs two copies of a tree, unpacked a second apart and
// then touched at different times, with a SOURCE_DATE_EPOCH: the tarballs
// must be identical in every format.
func TestReproducible(t *testing.T) {
	needTree(t)
	dir := tmpDir(t)
	ref := filepath.Join(dir, "ref.tar")
	writeRef(t, ref, refTree(0, 0))
	var trees []string
	for i := range 2 {
		d := mkdir(t, dir, fmt.Sprint("t", i))
		if err := Unpack(context.Background(), ref, d, UnpackOptions{DeviceManifest: d + ".dev"}); err != nil {
			t.Fatal(err)
		}
		// a step ran and wrote a file "now"
		if err := os.WriteFile(filepath.Join(d, "var/new"), []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, d)
		time.Sleep(1100 * time.Millisecond)
	}
	sde := time.Unix(refEpoch+3600, 0)
	for _, name := range formats {
		var sums [][]byte
		for _, d := range trees {
			tb := d + "." + name
			if err := Pack(context.Background(), d, []string{".", "boot/efi"}, tb, PackOptions{SourceDateEpoch: sde, DeviceManifest: d + ".dev"}); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(tb)
			if err != nil {
				t.Fatal(err)
			}
			sums = append(sums, b)
		}
		if !bytes.Equal(sums[0], sums[1]) {
			t.Errorf("%s: two packs of equal trees differ", name)
		}
		h := headers(t, trees[0]+"."+name)
		if !strings.Contains(h["var/new"], fmt.Sprintf("mtime=%d ", sde.Unix())) {
			t.Errorf("%s: mtime not clamped: %s", name, h["var/new"])
		}
		t.Logf("%s: %d bytes", name, len(sums[0]))
	}
}

// TestGNUTar checks compatibility with vmdb2's own caches: a tarball made by
// GNU tar exactly as vmdb2 makes it unpacks to the same tree as ours (minus
// the xattrs, which vmdb2's tar does not keep), one made with --xattrs to
// the very same tree, and GNU tar unpacks ours to the same tree.
func TestGNUTar(t *testing.T) {
	needTree(t)
	testreq.NeedRoot(t, "to run GNU tar with owners")
	testreq.NeedTools(t, "tar")
	dir := tmpDir(t)
	ref := filepath.Join(dir, "ref.tar")
	writeRef(t, ref, refTree(0, 0))
	a := mkdir(t, dir, "a")
	if err := Unpack(context.Background(), ref, a, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if b, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
			t.Fatalf("tar %v: %v\n%s", args, err, b)
		}
	}
	// vmdb2 0.26: tar --one-file-system -C ROOT -caf TARBALL . ./boot/efi
	vm := filepath.Join(dir, "vmdb2.tar.gz")
	run("--one-file-system", "-C", a, "-caf", vm, ".")
	c := mkdir(t, dir, "c")
	if err := Unpack(context.Background(), vm, c, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	// GNU tar does not archive hard links between device nodes as links
	noDevLinks := func(m map[string]string) map[string]string {
		for _, n := range []string{"dev/null", "dev/null-again"} {
			m[n] = strings.TrimSuffix(m[n], " links=dev/null")
		}
		return m
	}
	sameTree(t, "vmdb2's tar", noDevLinks(snapshot(t, a, false)), noDevLinks(snapshot(t, c, false)))

	vmx := filepath.Join(dir, "vmdb2-xattrs.tar.xz")
	run("--one-file-system", "--xattrs", "--xattrs-include=*", "-C", a, "-caf", vmx, ".", "./boot/efi")
	cx := mkdir(t, dir, "cx")
	if err := Unpack(context.Background(), vmx, cx, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "tar --xattrs", noDevLinks(snapshot(t, a, true)), noDevLinks(snapshot(t, cx, true)))

	ours := filepath.Join(dir, "ours.tar.zst")
	if err := Pack(context.Background(), a, []string{".", "boot/efi"}, ours, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	g := mkdir(t, dir, "g")
	run("--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", g, "-xpf", ours)
	sameTree(t, "GNU tar reading ours", snapshot(t, a, true), snapshot(t, g, true))
}

// TestRealTree builds a tree with system calls and setcap, as root, and
// round-trips it.
func TestRealTree(t *testing.T) {
	needTree(t)
	testreq.NeedRoot(t, "to build the tree with system calls and setcap")
	dir := tmpDir(t)
	root := mkdir(t, dir, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mkdir(t, root, "usr/bin")
	mkdir(t, root, "etc")
	mkdir(t, root, "dev")
	mkdir(t, root, "boot/efi/EFI")
	ping := filepath.Join(root, "usr/bin/ping")
	must(os.WriteFile(ping, []byte("ping"), 0o755))
	if _, err := exec.LookPath("setcap"); err == nil {
		if b, err := exec.Command("setcap", "cap_net_raw+ep", ping).CombinedOutput(); err != nil {
			t.Fatalf("setcap: %v %s", err, b)
		}
	} else {
		must(setXattr(ping, "security.capability", capNetRaw))
	}
	shadow := filepath.Join(root, "etc/shadow")
	must(os.WriteFile(shadow, []byte("x"), 0o640))
	must(os.Chown(shadow, 0, 42))
	su := filepath.Join(root, "usr/bin/su")
	must(os.WriteFile(su, []byte("su"), 0o755))
	must(os.Chmod(su, 0o4755))
	must(os.Link(su, filepath.Join(root, "usr/bin/su-again")))
	must(mknod(filepath.Join(root, "dev/null"), 'c', 0o666, 1, 3))
	must(mknod(filepath.Join(root, "run-fifo"), 'p', 0o600, 0, 0))
	must(os.Symlink("/etc/../../../../tmp", filepath.Join(root, "outside")))
	must(os.WriteFile(filepath.Join(root, "boot/efi/EFI/ä b.efi"), []byte("efi"), 0o644))
	must(setXattr(filepath.Join(root, "etc/shadow"), "user.note", "n"))
	want := snapshot(t, root, true)
	for _, name := range formats {
		tb := filepath.Join(dir, name)
		must(Pack(context.Background(), root, []string{".", "/boot/efi"}, tb, PackOptions{}))
		b := mkdir(t, dir, name+".d")
		must(Unpack(context.Background(), tb, b, UnpackOptions{}))
		got := snapshot(t, b, true)
		// the target directory's own mtime is the only thing allowed to
		// differ: the tree's root was changed after mkdir
		sameTree(t, name, want, got)
	}
}
