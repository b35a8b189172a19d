package qemuboot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeQEMU is a stand-in for qemu-system-x86_64: a "console" with a login
// prompt and a shell that echoes what is typed, as a serial getty does.
const fakeQEMU = `#!/bin/sh
printf 'SeaBIOS\r\n%s\r\n' "Booting \` + "`" + `fake'"
printf 'boottest login: '
read user
printf 'Welcome %s\r\nroot@boottest:~# ' "$user"
while IFS= read -r line; do
	printf '%s\r\n' "$line"
	sh -c "$line" 2>&1 | sed 's/$/\r/'
	printf 'root@boottest:~# '
done
`

func withFakeQEMU(t *testing.T, script string) {
	t.Helper()
	withFakeEmulator(t, &QEMU, script)
}

// withFakeEmulator makes the emulator *bin a stand-in running script
// for the rest of the test.
func withFakeEmulator(t *testing.T, bin *string, script string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := *bin
	*bin = p
	t.Cleanup(func() { *bin = old })
}

// argsQEMU is a stand-in emulator that prints its arguments, one a line,
// then DONE, then idles.
const argsQEMU = "#!/bin/sh\nfor a in \"$@\"; do printf 'ARG %s\\n' \"$a\"; done\necho DONE\nexec sleep 60\n"

// printedArgs returns what argsQEMU printed in vm, which Boot or
// BootKernel returned with err (the caller closes vm).
func printedArgs(t *testing.T, vm *VM, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.WaitFor(`DONE`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return vm.Output()
}

func fakeImage(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConsoleDialogue(t *testing.T) {
	withFakeQEMU(t, fakeQEMU)
	var log strings.Builder
	vm, err := Boot(t.Context(), fakeImage(t), BIOS, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if i, err := vm.Expect(5*time.Second, `Kernel panic`, "Booting `", `login:`); err != nil || i != 1 {
		t.Fatalf("Expect = %d, %v", i, err)
	}
	if err := vm.WaitFor(`login:`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := vm.Login("root"); err != nil {
		t.Fatal(err)
	}
	out, err := vm.Run("echo one; echo two >&2; printf 'three'", 5*time.Second)
	if err != nil || out != "one\ntwo\nthree" {
		t.Fatalf("Run = %q, %v", out, err)
	}
	before := time.Now()
	if out, err := vm.Run("true", 5*time.Second); err != nil || out != "" {
		t.Fatalf("Run(true) = %q, %v", out, err)
	}
	if q, since := vm.Quiet(), time.Since(before); q > since {
		t.Errorf("Quiet() = %v after a command's prompt printed %v ago at most", q, since)
	}
	out, err = vm.Run("echo no; sh -c 'exit 3'", 5*time.Second)
	if err == nil || out != "no" || !strings.Contains(err.Error(), "status 3") {
		t.Fatalf("failing Run = %q, %v", out, err)
	}
	if err := vm.WaitFor(`never printed`, 300*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	// The last prompt may arrive a moment after the wait began.
	if q := vm.Quiet(); q < 200*time.Millisecond {
		t.Errorf("Quiet() = %v after waiting 300ms for output that never came", q)
	}
	pid := vm.cmd.Process.Pid
	if err := vm.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vm.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatal("the emulator is still running after Close")
	}
	if _, err := os.Stat(vm.tmp); err == nil {
		t.Fatal("temporary directory left behind")
	}
	if !strings.Contains(log.String(), "boottest login:") || !strings.Contains(log.String(), "-drive file=") {
		t.Fatalf("log lacks the console or the command line:\n%s", log.String())
	}
}

func TestEmulatorExitsEarly(t *testing.T) {
	withFakeQEMU(t, "#!/bin/sh\necho 'qemu: could not load kernel' >&2\nexit 1\n")
	vm, err := Boot(t.Context(), fakeImage(t), BIOS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	err = vm.WaitFor(`login:`, 10*time.Second)
	if err == nil || errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "could not load kernel") {
		t.Fatalf("want an exit error with QEMU's message, got %v", err)
	}
}

func TestBootErrors(t *testing.T) {
	withFakeQEMU(t, fakeQEMU)
	if _, err := Boot(t.Context(), filepath.Join(t.TempDir(), "missing.img"), BIOS, nil); err == nil {
		t.Error("missing image accepted")
	}
	comma := filepath.Join(t.TempDir(), "a,b.img")
	os.WriteFile(comma, nil, 0o644)
	if _, err := Boot(t.Context(), comma, BIOS, nil); err == nil || !strings.Contains(err.Error(), "comma") {
		t.Errorf("comma in path: %v", err)
	}
	QEMU = "/nonexistent/qemu"
	if _, err := Boot(t.Context(), fakeImage(t), BIOS, nil); err == nil || !strings.Contains(err.Error(), "qemu-system-x86") {
		t.Errorf("missing emulator: %v", err)
	}
}
