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

	"github.com/vmdb2-go/vmdb2/internal/debarch"
)

// binfmtDir is where the kernel lists binfmt_misc handlers, and
// binfmtConfDir where qemu-user-static keeps their registration lines
// (variables so that tests can point them at fake directories).
var (
	binfmtDir     = "/proc/sys/fs/binfmt_misc"
	binfmtConfDir = "/usr/lib/binfmt.d"
)

// lookArchTest finds the arch-test program (replaced by tests).
var lookArchTest = func() (string, error) { return exec.LookPath("arch-test") }

// CheckArch returns nil if this host can run programs of the Debian
// architecture arch (natively or through an enabled binfmt_misc entry for
// qemu-user), as installing a base system of that architecture needs. For
// a foreign architecture it first asks arch-test (package arch-test) when it
// is installed, else looks for /proc/sys/fs/binfmt_misc/qemu-<name>. The
// error gives the one fix: the commands that install qemu-user-static and
// register its handler for that architecture only.
func CheckArch(arch string) error {
	host, err := HostArch()
	if err != nil {
		return err
	}
	if arch == host {
		return nil
	}
	h, _ := debarch.Get(host)
	for _, a := range h.Compat {
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
	a, err := debarch.Lookup(arch)
	if err != nil {
		return fmt.Errorf("bootstrap: %w (host is %s)", err, host)
	}
	if why, _ := binfmtState(a.QEMU); why != "" {
		return foreignError(arch, why)
	}
	return nil
}

// binfmtState says what is wrong with the binfmt_misc entry of the qemu
// emulator q, and the commands that fix it; "" when the entry is usable.
func binfmtState(q string) (why, fix string) {
	entry := filepath.Join(binfmtDir, "qemu-"+q)
	b, err := os.ReadFile(entry)
	if err != nil {
		return fmt.Sprintf("no binfmt_misc entry %s", entry), registerFix(q)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if sc.Scan() && strings.TrimSpace(sc.Text()) != "enabled" {
		return fmt.Sprintf("the binfmt_misc entry %s is disabled", entry), fmt.Sprintf("echo 1 > %s", entry)
	}
	if !strings.Contains(flagsOf(b), "F") {
		// The entry must be removed before it can be registered again.
		return fmt.Sprintf("the binfmt_misc entry %s lacks the F (fix binary) flag, so the emulator cannot be found inside the target", entry),
			fmt.Sprintf("echo -1 > %s; %s", entry, registerFix(q))
	}
	return "", ""
}

// registerFix returns the commands that register qemu-user-static's
// handler for q alone, with the F flag its registration line carries.
// binfmt-support is not the fix: its postinst registers every
// architecture.
func registerFix(q string) string {
	var steps []string
	conf := filepath.Join(binfmtConfDir, "qemu-"+q+".conf")
	if _, err := os.Stat(conf); err != nil {
		// Without its recommends: binfmt-support's postinst would
		// register every architecture.
		steps = append(steps, "apt-get install --no-install-recommends qemu-user-static")
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		steps = append(steps, fmt.Sprintf("mount -t binfmt_misc binfmt_misc %s", binfmtDir))
	}
	steps = append(steps, fmt.Sprintf("grep -v '^#' %s > %s", conf, filepath.Join(binfmtDir, "register")))
	return strings.Join(steps, "; ")
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

// foreignError says why arch's programs cannot run here and the commands,
// to run as root, that fix it.
func foreignError(arch, why string) error {
	host, _ := HostArch()
	fix := "install qemu-user-static and register its handler for " + arch
	if a, ok := debarch.Get(arch); ok {
		if _, f := binfmtState(a.QEMU); f != "" {
			fix = f
		} else {
			fix = fmt.Sprintf("the binfmt_misc entry %s looks usable; check it with 'arch-test %s'", filepath.Join(binfmtDir, a.Binfmt()), arch)
		}
	}
	return fmt.Errorf("bootstrap: this host (%s) cannot run %s programs (%s); to run them through qemu-user, as root: %s", host, arch, why, fix)
}
