package rootfs

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/internal/canary"
)

// needConfinedTree is needTree without the skip under -short for root, who
// packs and unpacks in-process.
func needConfinedTree(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		needTree(t)
	}
}

// readTarball returns the tarball's bytes ("" when it was not written).
func readTarball(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// TestPackNestedThroughLink: a nested filesystem's directory ("boot/efi")
// is packed only when it is a directory of the tree on a path of
// directories: with any link trap on the way (boot -> the host canary,
// which holds efi/), nothing of the host gets into the tarball.
func TestPackNestedThroughLink(t *testing.T) {
	needConfinedTree(t)
	for _, trap := range canary.Traps {
		// The root's walk covers boot/efi, unless boot is excluded
		// (--exclude=boot: tar's --one-file-system and ./boot/efi).
		for _, o := range []struct {
			name    string
			dirs    []string
			exclude []string
		}{
			{"root-and-nested", []string{".", "boot/efi"}, nil},
			{"boot-excluded", []string{".", "boot/efi"}, []string{"boot"}},
			{"nested-only", []string{"boot/efi"}, nil},
		} {
			t.Run(string(trap)+"/"+o.name, func(t *testing.T) {
				host := canary.New(t, "efi/grub.cfg", "grub.cfg")
				d := tmpDir(t)
				root := mkdir(t, d, "root")
				if err := os.WriteFile(filepath.Join(mkdir(t, root, "etc"), "hostname"), []byte("image\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				host.Plant(t, root, "boot/efi/grub.cfg", trap)
				tarball := filepath.Join(d, "rootfs.tar")
				err := Pack(context.Background(), root, o.dirs, tarball, PackOptions{Exclude: o.exclude})
				t.Logf("Pack: %v", err)
				host.NotIn(t, "the tarball", readTarball(t, tarball))
				host.Check(t)
			})
		}
	}
}

// TestPackFIFOAndDevice: a FIFO (and, as root, a device node) of the tree
// is archived as such, never opened.
func TestPackFIFOAndDevice(t *testing.T) {
	needConfinedTree(t)
	d := tmpDir(t)
	root := mkdir(t, d, "root")
	f := canary.NewFIFO(t, filepath.Join(root, "run/fifo"))
	dev := os.Geteuid() == 0 && mknod(filepath.Join(root, "zero"), 'c', 0o666, 1, 5) == nil
	tarball := filepath.Join(d, "rootfs.tar")
	var err error
	if canary.Run(func() { err = Pack(context.Background(), root, nil, tarball, PackOptions{}) }, f) {
		t.Error("Pack read the tree's FIFO")
	}
	if err != nil {
		t.Fatal(err)
	}
	hs := headers(t, tarball)
	if !strings.HasPrefix(hs["run/fifo"], "type=6 ") {
		t.Errorf("the FIFO is archived as %q", hs["run/fifo"])
	}
	if dev && !strings.HasPrefix(hs["zero"], "type=3 ") {
		t.Errorf("the device is archived as %q", hs["zero"])
	}
}

// TestPackTreeChangingUnderWalk swaps what the walk examined for a link
// to the host canary, or a FIFO, just before it is opened: nothing of the
// host gets into the tarball and nothing blocks.
func TestPackTreeChangingUnderWalk(t *testing.T) {
	ownIDs(t) // in-process: the hook runs in this process
	for _, c := range []struct {
		name string
		at   string                                                         // the path swapped
		swap func(t *testing.T, host *canary.Host, p string) []*canary.FIFO // replaces p
	}{
		{"dir-to-link", "d", func(t *testing.T, host *canary.Host, p string) []*canary.FIFO {
			os.RemoveAll(p)
			os.Symlink(host.Dir, p)
			return nil
		}},
		{"file-to-link", "d/f", func(t *testing.T, host *canary.Host, p string) []*canary.FIFO {
			os.Remove(p)
			os.Symlink(host.File, p)
			return nil
		}},
		{"file-to-fifo", "d/f", func(t *testing.T, host *canary.Host, p string) []*canary.FIFO {
			return []*canary.FIFO{canary.NewFIFO(t, p)}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := canary.New(t, "f")
			d := t.TempDir()
			root := mkdir(t, d, "root")
			mkdir(t, root, "d")
			if err := os.WriteFile(filepath.Join(root, "d/f"), []byte("the tree's file"), 0o644); err != nil {
				t.Fatal(err)
			}
			fifos := make(chan []*canary.FIFO, 1)
			swapped := false
			testHookBeforeOpen = func(rel string) {
				if rel == c.at && !swapped {
					swapped = true
					fifos <- c.swap(t, host, filepath.Join(root, rel))
				}
			}
			defer func() { testHookBeforeOpen = nil }()
			tarball := filepath.Join(d, "rootfs.tar")
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				err = Pack(context.Background(), root, nil, tarball, PackOptions{})
			}()
			select {
			case fs := <-fifos:
				if canary.Run(func() { <-done }, fs...) {
					t.Error("Pack read a FIFO swapped in for a file")
				}
			case <-done:
			}
			<-done
			t.Logf("Pack: %v", err)
			if !swapped {
				t.Fatal("the hook did not run")
			}
			host.NotIn(t, "the tarball", readTarball(t, tarball))
			host.Check(t)
		})
	}
}

// TestUnpackHostileMore adds to TestHostile what an ordinary user's
// unpack (through the namespace) meets: FIFOs, device nodes, setuid
// files and hard links to links, next to links out of the tree. Nothing is
// created, written or linked outside the target.
func TestUnpackHostileMore(t *testing.T) {
	needConfinedTree(t)
	host := canary.New(t)
	reg := func(name string, mode int64, data string) ent {
		return ent{typ: tar.TypeReg, name: name, mode: mode, data: []byte(data)}
	}
	sym := func(name, target string) ent { return ent{typ: tar.TypeSymlink, name: name, mode: 0o777, link: target} }
	cases := map[string][]ent{
		"fifo-then-file":   {{typ: tar.TypeFifo, name: "f", mode: 0o644}, reg("f", 0o644, "x")},
		"link-then-fifo":   {sym("f", host.File), {typ: tar.TypeFifo, name: "f", mode: 0o644}},
		"link-then-device": {sym("d", host.Dir), {typ: tar.TypeChar, name: "d/null", mode: 0o666, maj: 1, min: 3}},
		"device-then-file": {{typ: tar.TypeChar, name: "n", mode: 0o666, maj: 1, min: 3}, reg("n", 0o644, "x")},
		"link-then-setuid": {sym("bin", host.Dir), reg("bin/su", 0o4755, "#!/bin/sh\n")},
		"setuid":           {reg("su", 0o4755, "#!/bin/sh\n"), reg("sg", 0o2755, "#!/bin/sh\n")},
		"hardlink-to-link": {sym("l", host.File), {typ: tar.TypeLink, name: "hl", link: "l"}, reg("hl", 0o644, "overwritten")},
		"dotdot-link-dir":  {sym("up", "../../../../../../../../.."), reg("up"+host.Dir+"/x", 0o644, "x")},
		"link-chain":       {sym("a", "b"), sym("b", "c/.."), {typ: tar.TypeDir, name: "c/", mode: 0o755}, sym("c/d", host.Dir), reg("a/c/d/x", 0o644, "x")},
	}
	for name, es := range cases {
		t.Run(name, func(t *testing.T) {
			d := tmpDir(t)
			ref := filepath.Join(d, "evil.tar")
			writeRef(t, ref, es)
			root := mkdir(t, d, "root")
			err := Unpack(context.Background(), ref, root, UnpackOptions{DeviceManifest: filepath.Join(d, "devices.json")})
			t.Logf("Unpack: %v", err)
			host.Check(t)
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				switch e.Name() {
				case "evil.tar", "root", "devices.json":
				default:
					t.Errorf("%s was written next to the target", e.Name())
				}
			}
		})
	}
	// The setuid files are the target's, with their mode.
	d := tmpDir(t)
	ref := filepath.Join(d, "suid.tar")
	writeRef(t, ref, cases["setuid"])
	root := mkdir(t, d, "root")
	if err := Unpack(context.Background(), ref, root, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]uint32{"su": 0o4755, "sg": 0o2755} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, name), &st); err != nil || st.Mode&0o7777 != mode {
			t.Errorf("%s: %v, mode %o; want %o", name, err, st.Mode&0o7777, mode)
		}
	}
}

func TestConfinementAsOrdinaryUser(t *testing.T) {
	asuser.Run(t, "TestPackNestedThroughLink", "TestPackFIFOAndDevice", "TestPackTreeChangingUnderWalk", "TestUnpackHostileMore")
}
