package steps

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/grub"
)

type reportFunc = func(line int, sev Severity, format string, args ...any)

func checkApt(s *Step, report reportFunc) {
	if s.Str("apt") != "install" {
		report(s.KeyLine("apt"), Error, "apt: the value must be `install` (vmdb2: \"apt\" must always have value \"install\"), not %q", s.Str("apt"))
	}
	if s.Str("tag") == "" && s.Str("fs-tag") == "" {
		report(s.Line, Error, "apt: give the root filesystem's tag in `tag` (vmdb2: Unknown tag)")
	}
}

func checkGrub(s *Step, report reportFunc) {
	if s.Str("tag") == "" && s.Str("root-fs") == "" && s.Str("rootfs") == "" {
		report(s.Line, Error, "grub: give the root filesystem's tag in `tag`")
	}
	checkKernelParams(s, report)
	switch s.Str("grub") {
	case "bios":
	case "ieee1275":
		if s.Str("prep") == "" {
			report(s.Line, Error, "grub: ieee1275 needs the tag of the PReP boot partition in `prep` (GRUB's core.elf is written into it; 8 MiB is usual)")
		}
	case "uefi":
		if s.Str("efi") == "" && s.Str("efi-part") == "" {
			report(s.Line, Error, "grub: uefi needs the tag of the EFI system partition in `efi` (or `efi-part`)")
		}
	default:
		report(s.KeyLine("grub"), Error, "grub: unknown GRUB flavour %q; use bios, uefi or ieee1275", s.Str("grub"))
	}
}

// checkKernelParams refuses `kernel-params` items that are not strings
// (vmdb2 0.41 fails with a TypeError when it joins them) and those that
// would break out of the double-quoted GRUB_CMDLINE_LINUX_DEFAULT, which
// grub-mkconfig sources as shell code.
func checkKernelParams(s *Step, report reportFunc) {
	v := s.vals["kernel-params"]
	if v == nil || v.Kind != List {
		return
	}
	for _, item := range v.List {
		switch {
		case item.Kind != String:
			report(item.Line, Error, "grub: kernel-params item %s is a %s; quote it: \"%s\"", item.Describe(), item.Kind, scalarText(item))
		case strings.ContainsAny(item.Str, grub.BadKernelParamChars):
			report(item.Line, Error, "grub: kernel-params item %q holds a quote, backslash, $, backquote or line break, which would break GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub (a shell file)", item.Str)
		}
	}
}

func checkPartFlag(s *Step, report reportFunc) {
	switch s.Str("state") {
	case "enabled", "disabled":
	default:
		report(s.KeyLine("state"), Error, "set_part_flag: state must be \"enabled\" or \"disabled\", not %q", s.Str("state"))
	}
}

func checkMount(s *Step, report reportFunc) {
	if s.Str("dirname") != "" && s.Str("mount-on") == "" {
		report(s.KeyLine("dirname"), Error, "mount: `dirname` needs `mount-on`, the tag of the filesystem to mount it on (vmdb2: no mount-on tag given)")
	}
}

func checkDebootstrap(s *Step, report reportFunc) {
	name := s.Kind.Name
	for _, key := range []string{name, "target", "mirror"} {
		if s.Str(key) == "" {
			report(s.KeyLine(key), Error, "%s: `%s` is empty (vmdb2: missing arg for %s step)", name, key, name)
		}
	}
	checkCACerts(s, report)
}

// checkFileStep checks the keys of the file steps: modes and owners.
func checkFileStep(s *Step, report reportFunc) {
	checkModes(s, report)
	for _, key := range []string{"uid", "gid"} {
		if n := s.Int(key); n < 0 || n > maxID {
			report(s.KeyLine(key), Error, "%s: %s %d is not a user or group id (0 to %d)", s.Name(), key, n, maxID)
		}
	}
}

// maxID is the largest uid or gid: (uid_t)-1 means "no change" to chown.
const maxID = 1<<32 - 2

// checkModes warns about modes written in decimal: YAML 1.1 reads
// `perm: 755` as the number 755 (= 0o1363), exactly as vmdb2 does, which is
// rarely what the author meant.
func checkModes(s *Step, report reportFunc) {
	for _, key := range []string{"perm", "umask"} {
		if !s.Given(key) {
			continue
		}
		v := s.vals[key]
		if v.Kind != Int {
			continue
		}
		text := strconv.FormatInt(v.Int, 10)
		if v.Str == text && v.Int >= 8 && isOctalDigits(text) {
			report(v.Line, Warning, "%s: `%s: %s` is the decimal number %s (mode %#o), as in vmdb2; write %s: 0%s for mode 0%s",
				s.Name(), key, text, text, v.Int, key, text, text)
		}
		if v.Int < 0 || v.Int > 0o7777 {
			report(v.Line, Error, "%s: %s %s is not a file mode (0 to 07777)", s.Name(), key, fmt.Sprint(v.Int))
		}
	}
}

func isOctalDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '7' {
			return false
		}
	}
	return true
}
