package steps

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// hostPackages is the one table of the host programs a build may run and
// the Debian package that provides each. The planner uses it to refuse a
// build whose programs are missing before anything is written, and the
// runner to say what to install when a program is not found after all.
var hostPackages = map[string]string{
	"mke2fs":           "e2fsprogs",
	"debugfs":          "e2fsprogs",
	"dumpe2fs":         "e2fsprogs",
	"mdir":             "mtools",
	"mcopy":            "mtools",
	"mkfs.btrfs":       "btrfs-progs",
	"mkfs.xfs":         "xfsprogs",
	"mkfs.f2fs":        "f2fs-tools",
	"sload.f2fs":       "f2fs-tools",
	"mksquashfs":       "squashfs-tools",
	"mkswap":           "util-linux",
	"mmdebstrap":       "mmdebstrap",
	"debootstrap":      "debootstrap",
	"ansible-playbook": "ansible", // not ansible-core alone: it lacks the chroot connection
	"newuidmap":        "uidmap",
	"newgidmap":        "uidmap",
	"xz":               "xz-utils",
	"zstd":             "zstd",
}

// fsPrograms are the host programs that build each filesystem type from
// its staging directory (vfat is written in Go). An ext filesystem also
// needs debugfs when device nodes a debootstrap or unpack-rootfs recorded
// are added to it.
var fsPrograms = map[string][]string{
	"ext2":     {"mke2fs"},
	"ext3":     {"mke2fs"},
	"ext4":     {"mke2fs"},
	"btrfs":    {"mkfs.btrfs"},
	"xfs":      {"mkfs.xfs"},
	"f2fs":     {"mkfs.f2fs", "sload.f2fs"},
	"squashfs": {"mksquashfs"},
	"swap":     {"mkswap"},
}

// reusePrograms are the host programs that read and import the filesystem
// of a reused tag (kpartx tags, lvscan) mounted without mkfs.
var reusePrograms = []string{"debugfs", "dumpe2fs", "mdir", "mcopy"}

// installHint says how to get a program: its Debian package, or PATH.
func installHint(program string) string {
	if pkg, ok := hostPackages[program]; ok {
		return fmt.Sprintf("install the Debian package %s (apt-get install %s; `make deps` installs everything the tests need)", pkg, pkg)
	}
	return "install it or check PATH"
}

// missingProgram is the message for a host program that is not there.
func missingProgram(program string) string {
	return fmt.Sprintf("program %s not found: %s", program, installHint(program))
}

// hostToolMissing turns a command's "not found" error into one that names
// the package to install; other errors are returned unchanged.
func hostToolMissing(program string, err error) error {
	if err == nil || !(errors.Is(err, exec.ErrNotFound) || strings.Contains(err.Error(), ": not found in PATH")) {
		return err
	}
	name := program[strings.LastIndexByte(program, '/')+1:]
	return fmt.Errorf("%s (%w)", missingProgram(name), err)
}

// hostToolFound reports whether a program can be run the way the build
// will run it (PATH, then the sbin directories; see fstool.FindTool).
func hostToolFound(program string) bool {
	_, err := exec.LookPath(fstool.FindTool(program))
	return err == nil
}
