package qemuboot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelArgs: ARM64Kernel gives QEMU the virt machine with the max CPU
// and QEMU's fast pointer authentication under TCG, the kernel, initrd (by absolute path: QEMU runs in its own
// directory) and command line, the disk, and no firmware; it refuses to
// start without a kernel, and the machines with firmware refuse one.
func TestKernelArgs(t *testing.T) {
	withFakeEmulator(t, &QEMUAArch64, argsQEMU)
	dir := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	img := fakeImage(t)
	k := Kernel{Image: "vmlinuz", Initrd: "initrd.img", CmdLine: "root=LABEL=RASPIROOT console=ttyAMA0"}
	vm, err := BootKernel(t.Context(), img, ARM64Kernel, k, nil)
	out := printedArgs(t, vm, err)
	defer vm.Close()
	for _, want := range []string{
		"ARG -machine\nARG virt\n", "ARG -cpu\nARG max,pauth-impdef=on\n",
		"ARG -kernel\nARG " + filepath.Join(dir, "vmlinuz") + "\n",
		"ARG -initrd\nARG " + filepath.Join(dir, "initrd.img") + "\n",
		"ARG -append\nARG root=LABEL=RASPIROOT console=ttyAMA0\n",
		"ARG file=" + img + ",format=raw,if=virtio,snapshot=on\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "pflash") || strings.Contains(out, "-bios") {
		t.Errorf("firmware given to a machine without one:\n%s", out)
	}

	for _, c := range []struct {
		name string
		boot func() (*VM, error)
		want string
	}{
		{"no kernel", func() (*VM, error) { return Boot(t.Context(), img, ARM64Kernel, nil) }, "boot it with BootKernel"},
		{"kernel for firmware", func() (*VM, error) { return BootKernel(t.Context(), img, AAVMF, k, nil) }, "loads its kernel from the disk"},
		{"missing kernel", func() (*VM, error) {
			return BootKernel(t.Context(), img, ARM64Kernel, Kernel{Image: "nosuch"}, nil)
		}, "nosuch"},
		{"missing initrd", func() (*VM, error) {
			return BootKernel(t.Context(), img, ARM64Kernel, Kernel{Image: "vmlinuz", Initrd: "nosuch.img"}, nil)
		}, "nosuch.img"},
	} {
		vm, err := c.boot()
		if err == nil {
			vm.Close()
			t.Errorf("%s: started", c.name)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
