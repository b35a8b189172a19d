package qemuboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// VM is a running QEMU with its serial console.
type VM struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	tmp     string
	started time.Time

	mu      sync.Mutex
	out     []byte    // everything the console printed
	outAt   time.Time // when it last printed (started until it does)
	pos     int       // how far WaitFor has consumed out
	changed chan struct{}
	exited  chan struct{}
	waitErr error

	runSeq int

	closeOnce sync.Once
	closeErr  error
}

// Boot starts image (a raw disk image) in QEMU under TCG with fw, 1 GiB of
// memory, one vCPU (BootAccel with KVM gives two), the disk as virtio, no
// network and the first serial port (hvc0 on pseries) on QEMU's
// stdin/stdout. The disk is opened with
// snapshot=on: writes go to a temporary overlay and the image is not
// modified. Everything the console prints is copied to log (nil:
// nowhere). The VM runs until Close or until ctx is done.
func Boot(ctx context.Context, image string, fw Firmware, log io.Writer) (*VM, error) {
	return BootAccel(ctx, image, fw, TCG, log)
}

// BootAccel is Boot with the accelerator chosen (KVM only where
// KVMAvailable allows it).
func BootAccel(ctx context.Context, image string, fw Firmware, accel Accel, log io.Writer) (*VM, error) {
	return boot(ctx, image, fw, accel, nil, log)
}

// Kernel is what a machine without firmware (ARM64Kernel) starts: a Linux
// kernel image (QEMU unpacks a gzip-compressed one), its initrd ("" for
// none) and the kernel's command line.
type Kernel struct {
	Image, Initrd, CmdLine string
}

// BootKernel is Boot for a machine without firmware: QEMU loads k itself,
// under TCG, with the image as the VM's virtio disk (snapshot=on, as
// Boot's).
func BootKernel(ctx context.Context, image string, fw Firmware, k Kernel, log io.Writer) (*VM, error) {
	return boot(ctx, image, fw, TCG, &k, log)
}

// boot starts image with fw, and with k when fw's machine has no
// firmware (which it then needs).
func boot(ctx context.Context, image string, fw Firmware, accel Accel, k *Kernel, log io.Writer) (*VM, error) {
	k, err := kernelPaths(fw, k)
	if err != nil {
		return nil, err
	}
	if err := Available(fw); err != nil {
		return nil, err
	}
	abs, err := diskPath(image)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "qemuboot-")
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	bin, args, err := machineArgs(fw, accel, abs, tmp, k)
	if err == nil {
		var vm *VM
		if vm, err = launch(ctx, bin, args, tmp, log); err == nil {
			return vm, nil
		}
	}
	os.RemoveAll(tmp)
	return nil, err
}

// diskPath is image's absolute path, which must exist and hold no comma
// (QEMU's -drive would split it there).
func diskPath(image string) (string, error) {
	abs, err := filepath.Abs(image)
	if err != nil {
		return "", fmt.Errorf("qemu: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("qemu: image: %w", err)
	}
	if strings.Contains(abs, ",") {
		return "", fmt.Errorf("qemu: image path %q contains a comma, which QEMU's -drive cannot take", abs)
	}
	return abs, nil
}

// kernelPaths checks that a kernel is given exactly when fw's machine has
// no firmware, and returns it with absolute paths to existing files (QEMU
// runs in its temporary directory).
func kernelPaths(fw Firmware, k *Kernel) (*Kernel, error) {
	switch m := fw.machine(); {
	case m.kernel && k == nil:
		return nil, fmt.Errorf("qemu: %v has no firmware to load a kernel from the disk: boot it with BootKernel", fw)
	case !m.kernel && k != nil:
		return nil, fmt.Errorf("qemu: %v loads its kernel from the disk; BootKernel is for ARM64Kernel", fw)
	case k == nil:
		return nil, nil
	}
	out := *k
	for _, p := range []*string{&out.Image, &out.Initrd} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return nil, fmt.Errorf("qemu: kernel: %w", err)
		}
		*p = abs
	}
	if out.Image == "" {
		return nil, errors.New("qemu: BootKernel needs a kernel image")
	}
	return &out, nil
}

// Elapsed returns the time since QEMU was started.
func (vm *VM) Elapsed() time.Duration { return time.Since(vm.started) }

// ExitError is how QEMU ended (nil while it runs, or when it exited with
// status 0 and printed nothing on stderr).
func (vm *VM) ExitError() error {
	select {
	case <-vm.exited:
	default:
		return nil
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.waitErr
}

// Quiet returns how long the console has printed nothing: since its last
// output, or since QEMU started. A timed-out boot whose console went quiet
// early stalled; one that kept printing was only slow.
func (vm *VM) Quiet() time.Duration {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return time.Since(vm.outAt)
}

// Output returns everything the console has printed so far.
func (vm *VM) Output() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.out)
}

// ErrTimeout is wrapped by WaitFor's error when the pattern did not show up
// in time, ErrExited when QEMU exited first (ExitError says how).
var (
	ErrTimeout = errors.New("timed out")
	ErrExited  = errors.New("QEMU exited")
)

// WaitFor waits until the console prints something matching pattern (a
// regular expression, see regexp; a plain word such as "login:" matches
// itself) after what earlier WaitFor calls consumed, and consumes the
// output up to the end of the match. It fails when the timeout passes
// (wrapping ErrTimeout) or when QEMU exits first.
func (vm *VM) WaitFor(pattern string, timeout time.Duration) error {
	_, err := vm.waitMatch(pattern, timeout)
	return err
}

// Expect waits, like WaitFor, until the console prints something matching
// one of patterns and returns the index of the pattern that matched first
// in the output (e.g. a prompt versus "Kernel panic").
func (vm *VM) Expect(timeout time.Duration, patterns ...string) (int, error) {
	if len(patterns) == 0 {
		return -1, errors.New("qemu: Expect without patterns")
	}
	alt := make([]string, len(patterns))
	for i, p := range patterns {
		if _, err := regexp.Compile(p); err != nil {
			return -1, fmt.Errorf("qemu: pattern %q: %w", p, err)
		}
		alt[i] = "(" + p + ")"
	}
	// Count the groups of each pattern to find its own group's index.
	m, err := vm.waitMatch(strings.Join(alt, "|"), timeout)
	if err != nil {
		return -1, err
	}
	g := 1
	for i, p := range patterns {
		if m[g] != "" {
			return i, nil
		}
		g += 1 + regexp.MustCompile(p).NumSubexp()
	}
	return -1, fmt.Errorf("qemu: %q matched an empty string", strings.Join(patterns, "|"))
}

// waitMatch is WaitFor returning the submatches.
func (vm *VM) waitMatch(pattern string, timeout time.Duration) ([]string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("qemu: pattern: %w", err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		vm.mu.Lock()
		text := vm.out[vm.pos:]
		if loc := re.FindSubmatchIndex(text); loc != nil {
			var subs []string
			for i := 0; i+1 < len(loc); i += 2 {
				if loc[i] >= 0 {
					subs = append(subs, string(text[loc[i]:loc[i+1]]))
				} else {
					subs = append(subs, "")
				}
			}
			vm.pos += loc[1]
			vm.mu.Unlock()
			return subs, nil
		}
		changed := vm.changed
		vm.mu.Unlock()
		select {
		case <-changed:
		case <-vm.exited:
			// Drain what arrived together with the exit.
			vm.mu.Lock()
			loc := re.FindIndex(vm.out[vm.pos:])
			werr := vm.waitErr
			vm.mu.Unlock()
			if loc != nil {
				continue
			}
			return nil, fmt.Errorf("qemu: %w (%v) before %q appeared; console ends with: %s", ErrExited, werr, pattern, vm.tail())
		case <-deadline.C:
			return nil, fmt.Errorf("qemu: %w after %v waiting for %q; console ends with: %s", ErrTimeout, timeout, pattern, vm.tail())
		}
	}
}

func (vm *VM) tail() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	t := vm.out
	if len(t) > 600 {
		t = t[len(t)-600:]
	}
	return strconv.Quote(string(t))
}

// Send types s on the serial console.
func (vm *VM) Send(s string) error {
	if _, err := io.WriteString(vm.stdin, s); err != nil {
		return fmt.Errorf("qemu: writing to the console: %w", err)
	}
	return nil
}

// Login logs in on the serial getty as user, which must have no password,
// once "login:" has been seen (Login waits for it, up to 30 seconds, if
// WaitFor did not consume it yet), and waits for a shell prompt. It then
// turns off bracketed paste, whose escapes would clutter Run's output.
func (vm *VM) Login(user string) error {
	// The prompt may already have been consumed by WaitFor("login:").
	vm.mu.Lock()
	seen := bytes.Contains(vm.out[max(0, vm.pos-64):], []byte("login:"))
	vm.mu.Unlock()
	if !seen {
		if err := vm.WaitFor(`login:`, 30*time.Second); err != nil {
			return err
		}
	}
	if err := vm.Send(user + "\n"); err != nil {
		return err
	}
	if err := vm.WaitFor(`[#$] $`, 60*time.Second); err != nil {
		return fmt.Errorf("qemu: no shell prompt after logging in as %s: %w", user, err)
	}
	if _, err := vm.Run("bind 'set enable-bracketed-paste off' 2>/dev/null; true", 30*time.Second); err != nil {
		return err
	}
	return nil
}

// Run runs cmd in the logged-in shell (so `cd` and variables persist, and
// `exit` logs out) and returns what it printed
// (stdout and stderr, lines joined with "\n", no trailing newline). A
// non-zero exit status is an error that includes the output.
func (vm *VM) Run(cmd string, timeout time.Duration) (string, error) {
	vm.runSeq++
	tag := strconv.Itoa(vm.runSeq)
	// The markers are split by quotes in what is typed, so the terminal's
	// echo of the command line never matches them.
	line := fmt.Sprintf("echo BT''START%s; %s; echo BT''END%s:$?\n", tag, cmd, tag)
	if err := vm.Send(line); err != nil {
		return "", err
	}
	if err := vm.WaitFor(`BTSTART`+tag+`\r?\n`, timeout); err != nil {
		return "", err
	}
	m, err := vm.waitMatch(`(?s)^(.*?)\r?\n?BTEND`+tag+`:(\d+)`, timeout)
	if err != nil {
		return "", err
	}
	out := strings.ReplaceAll(m[1], "\r", "")
	out = strings.TrimSuffix(out, "\n")
	if m[2] != "0" {
		return out, fmt.Errorf("qemu: %q exited with status %s: %s", cmd, m[2], out)
	}
	return out, nil
}

// Close kills QEMU, waits for it and removes its temporary files. It can be
// called more than once.
func (vm *VM) Close() error {
	vm.closeOnce.Do(func() {
		if vm.cmd.Process != nil {
			_ = syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
			_ = vm.cmd.Process.Kill()
		}
		select {
		case <-vm.exited:
		case <-time.After(30 * time.Second):
			vm.closeErr = fmt.Errorf("qemu: QEMU (pid %d) did not exit after SIGKILL", vm.cmd.Process.Pid)
		}
		vm.stdin.Close()
		if err := os.RemoveAll(vm.tmp); err != nil && vm.closeErr == nil {
			vm.closeErr = fmt.Errorf("qemu: %w", err)
		}
	})
	return vm.closeErr
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("qemu: copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// launch starts the emulator bin with args in tmp (which holds QEMU's
// snapshot overlay and is removed by Close) and returns the VM reading
// its console from stdout.
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
	now := time.Now()
	vm := &VM{cmd: cmd, stdin: stdin, tmp: tmp, started: now, outAt: now,
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
				vm.outAt = time.Now()
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
