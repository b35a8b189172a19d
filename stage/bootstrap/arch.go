package bootstrap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// qemuNames maps Debian architectures to the name of their qemu-user
// emulator (binfmt_misc entries are called qemu-<name>).
var qemuNames = map[string]string{
	"amd64": "x86_64", "i386": "i386", "arm64": "aarch64", "armhf": "arm",
	"armel": "arm", "ppc64el": "ppc64le", "ppc64": "ppc64", "s390x": "s390x",
	"riscv64": "riscv64", "mips64el": "mips64el", "mipsel": "mipsel",
	"loong64": "loongarch64", "alpha": "alpha", "hppa": "hppa",
	"m68k": "m68k", "sh4": "sh4", "sparc64": "sparc64", "powerpc": "ppc",
}

// nativeCompat lists, per host architecture, the others its kernel runs
// without emulation (when arch-test is not there to ask).
var nativeCompat = map[string][]string{
	"amd64": {"i386", "x32"},
	"arm64": {"armhf", "armel"},
}

// binfmtDir is where the kernel lists binfmt_misc handlers.
var binfmtDir = "/proc/sys/fs/binfmt_misc"

// lookArchTest finds the arch-test program (replaced by tests).
var lookArchTest = func() (string, error) { return exec.LookPath("arch-test") }

// CheckArch returns nil if this host can run programs of the Debian
// architecture arch (natively or through an enabled binfmt_misc entry for
// qemu-user), as installing a base system of that architecture needs. For
// a foreign architecture it first asks arch-test (package arch-test) when it
// is installed, else looks for /proc/sys/fs/binfmt_misc/qemu-<name>. The
// error says what to install.
func CheckArch(arch string) error {
	host, err := HostArch()
	if err != nil {
		return err
	}
	if arch == host {
		return nil
	}
	for _, a := range nativeCompat[host] {
		if a == arch {
			// arch-test knows better (the kernel may lack the
			// compat support); without it, assume it is there.
			if p, err := lookArchTest(); err == nil {
				if out, err := exec.Command(p, arch).CombinedOutput(); err != nil {
					return foreignError(arch, strings.TrimSpace(string(out)))
				}
			}
			return nil
		}
	}
	if p, err := lookArchTest(); err == nil {
		out, err := exec.Command(p, arch).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			return foreignError(arch, strings.TrimSpace(string(out)))
		}
		// 2: arch-test cannot check this arch; look at binfmt_misc.
	}
	q, ok := qemuNames[arch]
	if !ok {
		return fmt.Errorf("bootstrap: unknown architecture %q (host is %s)", arch, host)
	}
	entry := filepath.Join(binfmtDir, "qemu-"+q)
	b, err := os.ReadFile(entry)
	if err != nil {
		return foreignError(arch, fmt.Sprintf("no binfmt_misc entry %s", entry))
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if sc.Scan() && strings.TrimSpace(sc.Text()) != "enabled" {
		return foreignError(arch, fmt.Sprintf("the binfmt_misc entry %s is disabled", entry))
	}
	if !bytes.Contains(b, []byte("flags: ")) || !strings.Contains(flagsOf(b), "F") {
		return foreignError(arch, fmt.Sprintf("the binfmt_misc entry %s lacks the F (fix binary) flag, so the emulator cannot be found inside the target", entry))
	}
	return nil
}

// flagsOf returns the flags line of a binfmt_misc entry.
func flagsOf(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(line, "flags: "); ok {
			return f
		}
	}
	return ""
}

func foreignError(arch, why string) error {
	host, _ := HostArch()
	return fmt.Errorf("bootstrap: this host (%s) cannot run %s programs (%s): install qemu-user-static and binfmt-support (apt-get install qemu-user-static binfmt-support) so that the kernel runs them through qemu, then check with 'arch-test %s'", host, arch, why, arch)
}
