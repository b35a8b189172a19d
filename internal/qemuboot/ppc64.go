package qemuboot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PPC64 boots ppc64/ppc64el images: QEMU's pseries machine (what IBM POWER
// servers under PowerVM look like) with SLOF, its Open Firmware (IEEE
// 1275), which loads the boot loader from the disk's PReP boot partition.
var (
	// QEMUPPC64 is the emulator BootPPC64 runs (package qemu-system-ppc).
	QEMUPPC64 = "qemu-system-ppc64"
	// SLOF is the pseries firmware (package qemu-system-data, a
	// dependency of qemu-system-ppc).
	SLOF = "/usr/share/qemu/slof.bin"
)

// AvailablePPC64 reports why BootPPC64 cannot run on this host, or nil.
func AvailablePPC64() error {
	if _, err := exec.LookPath(QEMUPPC64); err != nil {
		return fmt.Errorf("qemu: %s not found (install qemu-system-ppc): %w", QEMUPPC64, err)
	}
	if _, err := os.Stat(SLOF); err != nil {
		return fmt.Errorf("qemu: the SLOF firmware is missing (install qemu-system-data): %w", err)
	}
	return nil
}

// PPC64Args returns QEMU's arguments for booting the raw image at path abs
// on a pseries machine under TCG: 1 GiB, 2 CPUs, the disk as virtio-blk
// in snapshot mode, no network, and the hypervisor console (hvc0, which
// SLOF and GRUB use too) on stdin/stdout. The spectre-mitigation
// capabilities that TCG cannot provide are turned off, which QEMU
// would otherwise only warn about.
func PPC64Args(abs string) []string {
	return []string{
		"-M", "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off",
		"-accel", "tcg", "-m", "1024", "-smp", "2", "-bios", SLOF,
		"-display", "none", "-vga", "none", "-monitor", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot",
		"-drive", "file=" + abs + ",format=raw,if=virtio,snapshot=on",
	}
}

// BootPPC64 starts image (a raw disk image) in qemu-system-ppc64 as
// PPC64Args says. Everything the console prints is copied to log (nil:
// nowhere). The returned VM is used as Boot's: WaitFor, Login, Run, Close.
func BootPPC64(ctx context.Context, image string, log io.Writer) (*VM, error) {
	if err := AvailablePPC64(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(image)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("qemu: image: %w", err)
	}
	if strings.Contains(abs, ",") {
		return nil, fmt.Errorf("qemu: image path %q contains a comma, which QEMU's -drive cannot take", abs)
	}
	tmp, err := os.MkdirTemp("", "qemuboot-")
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	vm, err := launch(ctx, QEMUPPC64, PPC64Args(abs), tmp, log)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return vm, nil
}

// launch starts the emulator bin with args in tmp (which holds QEMU's
// snapshot overlay and is removed by Close) and returns the VM reading
// its console from stdout.
// TODO: Boot (vm.go) starts QEMU the same way and could use this.
func launch(ctx context.Context, bin string, args []string, tmp string, log io.Writer) (*VM, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if log != nil {
		fmt.Fprintf(log, "qemu: %s %s\n", bin, strings.Join(args, " "))
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: starting %s: %w", bin, err)
	}
	vm := &VM{cmd: cmd, stdin: stdin, tmp: tmp, started: time.Now(),
		changed: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, rerr := stdout.Read(buf)
			if n > 0 {
				if log != nil {
					log.Write(buf[:n])
				}
				vm.mu.Lock()
				vm.out = append(vm.out, buf[:n]...)
				close(vm.changed)
				vm.changed = make(chan struct{})
				vm.mu.Unlock()
			}
			if rerr != nil {
				break
			}
		}
		werr := cmd.Wait()
		vm.mu.Lock()
		if s := strings.TrimSpace(stderr.String()); s != "" {
			if werr != nil {
				werr = fmt.Errorf("%w: %s", werr, s)
			} else {
				werr = fmt.Errorf("exited: %s", s)
			}
		}
		vm.waitErr = werr
		vm.mu.Unlock()
		close(vm.exited)
	}()
	return vm, nil
}
