package userns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Available reports whether namespaces can be used by this process. It
// returns nil if they can, else an error that lists every problem found and
// says exactly what to configure:
//
//   - the kernel must support user namespaces, with user.max_user_namespaces
//     > 0 and, where it exists, kernel.unprivileged_userns_clone = 1 (and
//     kernel.apparmor_restrict_unprivileged_userns = 0 on Ubuntu) for
//     ordinary users;
//   - an ordinary user needs lines in /etc/subuid and /etc/subgid granting at
//     least 65535 ids (in one range or several), and newuidmap/newgidmap
//     (Debian package uidmap), installed set-user-ID root or, where the
//     bounding set lacks CAP_SYS_ADMIN (in containers), with file
//     capabilities;
//   - root needs ids 0..65535 to exist in its own namespace (relevant inside
//     containers).
//
// When [Init] has been called, Available also starts one trial namespace
// (a few milliseconds), which mounts a proc of its own, so that problems
// the static checks cannot see (a seccomp filter, an LSM policy, a
// container's masked /proc) are reported too, with their fix.
func Available() error {
	f := hostFacts()
	if err := checkStatic(f); err != nil {
		return err
	}
	if !initCalled.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return explainTrial(Run(ctx, Cmd{Helper: helperProbe}), f)
}

// Fixes for a trial namespace refused by a seccomp filter, by runtime.
const (
	fixSeccomp = "the process runs under a seccomp filter that refuses new user namespaces " +
		"(Docker's and containerd's default profiles allow clone and unshare with CLONE_NEWUSER " +
		"only with CAP_SYS_ADMIN; podman's default profile allows them): run the container with " +
		"'docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined' " +
		"(or a profile that allows clone, clone3 and unshare), use podman with its default profile, " +
		"or in Kubernetes set the pod's securityContext.seccompProfile to {type: Unconfined} (or a " +
		"Localhost profile allowing them), with hostUsers: false where the cluster supports it"
	fixProcMasked = "the container runtime masks parts of /proc (or makes them read-only), and the kernel then " +
		"lets no user namespace mount a proc of its own: run the container with " +
		"'podman run --security-opt unmask=/proc/*' or 'docker run --security-opt systempaths=unconfined', " +
		"or in Kubernetes set the container's securityContext.procMount to Unmasked (which needs hostUsers: false)"
	fixTrialPerm = "creating a user namespace was refused (EPERM) although no seccomp filter is in force: " +
		"an LSM (AppArmor, SELinux) or a chroot forbids it here; on Ubuntu run " +
		"'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' as root"
)

// explainTrial turns the trial namespace's error into the one change that
// fixes it, where its cause can be told apart.
func explainTrial(err error, f facts) error {
	if err == nil {
		return nil
	}
	var exit *ExitError
	if errors.As(err, &exit) && strings.HasPrefix(exit.Message, procMasked) {
		return fmt.Errorf("userns: a user namespace can be made but it %s: %s", exit.Message, fixProcMasked)
	}
	if exit != nil || !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("userns: the configuration looks right but a trial namespace failed: %w", err)
	}
	fix := fixTrialPerm
	if seccompFiltered(f) {
		fix = fixSeccomp
	}
	return fmt.Errorf("userns: namespaces are not usable: %s (%w)", fix, err)
}

// seccompFiltered reports whether /proc/self/status says a seccomp filter
// applies to this process ("Seccomp: 2").
func seccompFiltered(f facts) bool {
	b, err := f.readFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v) == "2"
		}
	}
	return false
}

// checkStatic performs every check of Available that needs no namespace.
func checkStatic(f facts) error {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	if !f.nsSupport {
		add("the kernel has no user namespaces (/proc/self/ns/user is missing): use a kernel built with CONFIG_USER_NS=y")
	}
	if b, err := f.readFile("/proc/sys/user/max_user_namespaces"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n == 0 {
			add("user namespaces are disabled: run 'sysctl -w user.max_user_namespaces=15000' as root (and set it in /etc/sysctl.d/ to keep it)")
		}
	}
	if f.euid != 0 {
		if b, err := f.readFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
			add("unprivileged user namespaces are disabled: run 'sysctl -w kernel.unprivileged_userns_clone=1' as root (and set it in /etc/sysctl.d/ to keep it)")
		}
		if b, err := f.readFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); err == nil && strings.TrimSpace(string(b)) == "1" {
			add("AppArmor restricts unprivileged user namespaces: run 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' as root, or give this program an AppArmor profile with 'userns,'")
		}
		if f.userName == "" {
			add("cannot find the name of uid %d (%v); /etc/subuid entries by uid are used instead", f.euid, f.userErr)
		}
		if _, err := computeMapping(f); err != nil {
			add("%s", strings.TrimPrefix(err.Error(), "userns: "))
		}
		for _, tool := range []string{"newuidmap", "newgidmap"} {
			p, err := f.lookPath(tool)
			if err != nil {
				add("%s is missing: install the uidmap package (apt-get install uidmap)", tool)
				continue
			}
			st, err := f.stat(p)
			if err != nil {
				add("%s: %v", p, err)
				continue
			}
			owner := -1
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				owner = int(sys.Uid)
			}
			caps := f.fileCaps(p)
			if st.Mode()&os.ModeSetuid == 0 || owner != 0 {
				// It may have file capabilities instead (Fedora);
				// the trial run settles that.
				if !caps {
					add("%s is not set-user-ID root: run 'chmod u+s %s' as root (or reinstall the uidmap package)", p, p)
				}
			} else if !caps && !boundingHasSysAdmin(f) {
				add("%s is set-user-ID root, which cannot write another user's id map in a container without CAP_SYS_ADMIN: "+
					"give it a file capability instead, as the container's root: 'chmod u-s %s && setcap %s+ep %s' "+
					"(package libcap2-bin), or build as the container's root", p, p, mapCap[tool], p)
			}
		}
	} else if b, err := f.readFile("/proc/self/uid_map"); err == nil && !coversRange(string(b)) {
		add("root's own namespace does not contain ids 0..%d (its uid_map is %q): run in a container that maps at least 65536 ids", Size-1, strings.TrimSpace(string(b)))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("userns: namespaces are not usable:\n  - " + strings.Join(problems, "\n  - "))
}

// hasFileCaps reports whether path has a security.capability attribute.
func hasFileCaps(path string) bool {
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(path, "security.capability", buf)
	return err == nil && n > 0
}

// coversRange reports whether a uid_map text maps ids 0..Size-1 of the
// namespace it describes (lines "inside outside count").
func coversRange(uidMap string) bool {
	next := 0
	type r struct{ in, n int }
	var rs []r
	for _, line := range strings.Split(uidMap, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.Atoi(f[0])
		n, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if n > Size {
			n = Size
		}
		rs = append(rs, r{in, int(n)})
	}
	for changed := true; changed && next < Size; {
		changed = false
		for _, x := range rs {
			if x.in <= next && x.in+x.n > next {
				next = x.in + x.n
				changed = true
			}
		}
	}
	return next >= Size
}

// mapCap is the capability newuidmap and newgidmap need.
var mapCap = map[string]string{"newuidmap": "cap_setuid", "newgidmap": "cap_setgid"}

// boundingHasSysAdmin reports whether CAP_SYS_ADMIN is in this process's
// capability bounding set (CapBnd in /proc/self/status): a set-user-ID
// root newuidmap has it only then, and needs it to write the map of a
// namespace another user owns. Unknown counts as yes.
func boundingHasSysAdmin(f facts) bool {
	b, err := f.readFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bnd, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || bnd&(1<<unix.CAP_SYS_ADMIN) != 0
		}
	}
	return true
}
