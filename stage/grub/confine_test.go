package grub

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/internal/canary"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

var confRoot = Layout{{UUID: "3f0e8a7c-1234-4cde-9abc-0123456789ab", Type: "ext4", Table: "gpt", Partition: 2}}

// espPaths are the files InstallEFI writes for amd64.
var espPaths = []string{"EFI/BOOT/BOOTX64.EFI", "EFI/debian/grubx64.efi"}

// TestInstallEFIConfined plants every link trap at each file InstallEFI
// writes into the ESP's directory: nothing reaches the host canary.
func TestInstallEFIConfined(t *testing.T) {
	img := append([]byte("MZ"), make([]byte, 100)...)
	for _, p := range espPaths {
		for _, trap := range canary.Traps {
			t.Run(p+"/"+string(trap), func(t *testing.T) {
				host := canary.New(t)
				esp := t.TempDir()
				host.Plant(t, esp, p, trap)
				err := InstallEFI(esp, img, "amd64")
				t.Logf("InstallEFI: %v", err)
				host.Check(t)
			})
		}
	}
	t.Run("fifo", func(t *testing.T) {
		esp := t.TempDir()
		f := canary.NewFIFO(t, filepath.Join(esp, espPaths[0]))
		var err error
		if canary.Run(func() { err = InstallEFI(esp, img, "amd64") }, f) {
			t.Error("InstallEFI wrote into a FIFO of the ESP")
		}
		if err == nil {
			t.Error("InstallEFI with a FIFO in the way: no error")
		}
	})
}

// TestSecureBootNoFIFOOrDevice: a FIFO or device node at a signed file's
// path (or a link to one) is not opened: it counts as absent, as in
// grub-install, and never blocks.
func TestSecureBootNoFIFOOrDevice(t *testing.T) {
	root := fakeTree(t, map[string]string{sbGrub: "MZgrub"})
	f := canary.NewFIFO(t, filepath.Join(root, sbShim))
	var s *SignedEFI
	var err error
	if canary.Run(func() { s, err = FindSecureBoot(root, "amd64") }, f) {
		t.Error("FindSecureBoot read a FIFO of the target")
	}
	if err != nil || s == nil || s.Shim != nil {
		t.Errorf("with a FIFO as shim: %+v, %v; want signed GRUB without shim", s, err)
	}
	root = fakeTree(t, map[string]string{sbGrub: "MZgrub"})
	if err := unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Logf("cannot make a device node here (%v): the FIFO only", err)
		return
	}
	os.MkdirAll(filepath.Join(root, filepath.Dir(sbMM)), 0o755)
	if err := os.Symlink("/null", filepath.Join(root, sbMM)); err != nil {
		t.Fatal(err)
	}
	s, err = FindSecureBoot(root, "amd64")
	if err != nil || s == nil || s.MokManager != nil {
		t.Errorf("with a link to a device as MokManager: %+v, %v; want it absent", s, err)
	}
}

// fakeRun stands in for the namespace: it records the call and lets the
// test plant what "the target's grub-mkimage" leaves in the work directory.
type fakeRun struct {
	calls int
	plant func(work string)
}

func (f *fakeRun) run(_ context.Context, c userns.Cmd) error {
	f.calls++
	if f.plant != nil {
		f.plant(c.Binds[0].Source)
	}
	return nil
}

// TestToolsLookedUpInTarget: the target's tools and module directories
// are looked up inside it; a target whose /usr is a link to a host tree
// holding GRUB has none.
func TestToolsLookedUpInTarget(t *testing.T) {
	host := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib/grub/i386-pc"} {
		os.MkdirAll(filepath.Join(host, d), 0o755)
	}
	for _, f := range []string{"usr/bin/grub-mkimage", "usr/sbin/grub-mkconfig", "usr/sbin/grub-probe", "usr/bin/grub-mkrelpath"} {
		os.WriteFile(filepath.Join(host, f), nil, 0o755)
	}
	for _, link := range []string{filepath.Join(host, "usr"), "../../../../../../../../../../../../" + host + "/usr"} {
		root := t.TempDir()
		os.Symlink(link, filepath.Join(root, "usr"))
		fr := &fakeRun{}
		tgt := Target{Root: root, Run: fr.run}
		if _, _, err := BuildBIOS(t.Context(), tgt, confRoot); err == nil {
			t.Errorf("usr -> %s: BuildBIOS found the host's GRUB", link)
		}
		if err := MkConfig(t.Context(), tgt, confRoot); err == nil {
			t.Errorf("usr -> %s: MkConfig found the host's GRUB", link)
		}
		if fr.calls != 0 {
			t.Errorf("usr -> %s: %d commands run with the host's GRUB", link, fr.calls)
		}
	}
}

// TestMkimageOutputNotFollowed: what the target's tools leave in the work
// directory is read without following links out of it, and a FIFO there
// does not block.
func TestMkimageOutputNotFollowed(t *testing.T) {
	for _, c := range []struct {
		name  string
		plant func(host *canary.Host, work string)
		fifo  string // a FIFO planted in the work directory
	}{
		{name: "core.img-link", plant: func(host *canary.Host, work string) {
			os.Symlink(host.File, filepath.Join(work, "core.img"))
			os.WriteFile(filepath.Join(work, "boot.img"), []byte("boot"), 0o644)
		}},
		{name: "boot.img-link", plant: func(host *canary.Host, work string) {
			os.WriteFile(filepath.Join(work, "core.img"), []byte("core"), 0o644)
			os.Symlink("../../../../../../../../../../.."+host.File, filepath.Join(work, "boot.img"))
		}},
		{name: "fifo", fifo: "core.img", plant: func(host *canary.Host, work string) {
			os.WriteFile(filepath.Join(work, "boot.img"), []byte("boot"), 0o644)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := canary.New(t)
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
			os.MkdirAll(filepath.Join(root, "usr/lib/grub/i386-pc"), 0o755)
			os.WriteFile(filepath.Join(root, "usr/bin/grub-mkimage"), nil, 0o755)
			fifos := make(chan *canary.FIFO, 1)
			fr := &fakeRun{plant: func(work string) {
				c.plant(host, work)
				if c.fifo != "" {
					fifos <- canary.NewFIFO(t, filepath.Join(work, c.fifo))
				}
			}}
			var core, boot []byte
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				core, boot, err = BuildBIOS(t.Context(), Target{Root: root, Run: fr.run}, confRoot)
			}()
			select {
			case f := <-fifos:
				if canary.Run(func() { <-done }, f) {
					t.Error("BuildBIOS read a FIFO the target's tool left")
				}
			case <-done:
			}
			<-done
			t.Logf("BuildBIOS: %v", err)
			host.NotIn(t, "core.img", core)
			host.NotIn(t, "boot.img", boot)
			if err == nil {
				t.Error("BuildBIOS accepted a link or FIFO as grub-mkimage's output")
			}
			host.Check(t)
		})
	}
}

func TestConfinementAsOrdinaryUser(t *testing.T) {
	asuser.Run(t, "TestInstallEFIConfined", "TestSecureBootNoFIFOOrDevice", "TestToolsLookedUpInTarget", "TestMkimageOutputNotFollowed", "TestBootDirFilesConfined")
}
