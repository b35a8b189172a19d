// Package debarch is the one table of the Debian architectures this
// program builds for, and what each one means to the rest of it: Go's
// name for it (the host's architecture), qemu-user's emulator and its
// binfmt_misc entry (foreign builds), the ELF machine of its programs,
// GRUB's EFI target, package and removable-media file name, GRUB's
// IEEE 1275 flavour, the serial console of `console: serial`, and the
// QEMU system emulator and machine that boot it.
//
// An architecture missing from the table cannot be bootstrapped here (no
// emulator is known for it); a field left empty means the architecture
// has no such thing (armel has no EFI GRUB in Debian).
package debarch

import (
	"debug/elf"
	"fmt"
	"runtime"
	"sort"
	"strings"
)

// Arch is one Debian architecture.
type Arch struct {
	// Name is Debian's name (dpkg --print-architecture).
	Name string
	// GOARCH is Go's name for it, "" when Go has no such port (or its
	// port is another Debian architecture's: Go's arm is armhf).
	GOARCH string
	// QEMU is qemu-user's name for it: the emulator qemu-QEMU-static and
	// the binfmt_misc entry qemu-QEMU (see Binfmt).
	QEMU string
	// ELFMachine and ELFClass are those of its programs.
	ELFMachine elf.Machine
	ELFClass   elf.Class
	// GrubEFI is grub-mkimage's EFI target (arm64-efi), EFIBoot the
	// removable-media file name under EFI/BOOT (BOOTAA64.EFI) and
	// GrubEFIPackage Debian's package of GRUB for it (grub-efi-arm64;
	// its modules are in GrubEFIPackage-bin). All "" when Debian has no
	// EFI GRUB for the architecture.
	GrubEFI, EFIBoot, GrubEFIPackage string
	// GrubIEEE1275 says that Debian's grub-ieee1275 for it is GRUB for
	// PowerPC Open Firmware (powerpc-ieee1275).
	GrubIEEE1275 bool
	// Console is the serial console of `console: serial` (vmdb2's rule:
	// hvc0 when the name contains ppc64, ttyAMA0 when it contains arm,
	// else ttyS0).
	Console string
	// QEMUSystem and QEMUMachine are the QEMU system emulator and
	// machine that boot its images ("" when none is known here).
	QEMUSystem, QEMUMachine string
	// QEMUCPU is the CPU of that machine under TCG ("" for QEMU's
	// default). arm64's is the max CPU with QEMU's own pointer
	// authentication algorithm instead of the architected QARMA5, which
	// is slow to emulate and runs on every call of a kernel and userland
	// built with branch protection, as Debian's are: a bookworm image
	// reaches its login prompt in 45 s instead of 104 s on the 2-core CI
	// host. Programs see the same CPU features.
	QEMUCPU string
	// Compat are the architectures whose programs its kernel runs
	// without emulation (i386 on amd64).
	Compat []string
}

// Binfmt is the name of the binfmt_misc entry of a's qemu-user emulator
// (qemu-aarch64), as qemu-user-static's /usr/lib/binfmt.d files register
// it.
func (a Arch) Binfmt() string { return "qemu-" + a.QEMU }

// EFIName is the suffix Debian's boot loader file names use for a's EFI
// ("aa64": grubaa64.efi, shimaa64.efi), "" when a has no EFI GRUB.
func (a Arch) EFIName() string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(a.EFIBoot, "BOOT"), ".EFI"))
}

const (
	ttyS  = "ttyS0"
	ttyAM = "ttyAMA0"
	hvc   = "hvc0"
)

// table holds every architecture, by Debian name.
var table = map[string]Arch{
	"amd64": {Name: "amd64", GOARCH: "amd64", QEMU: "x86_64", ELFMachine: elf.EM_X86_64, ELFClass: elf.ELFCLASS64,
		GrubEFI: "x86_64-efi", EFIBoot: "BOOTX64.EFI", GrubEFIPackage: "grub-efi-amd64", Console: ttyS,
		QEMUSystem: "qemu-system-x86_64", QEMUMachine: "pc", Compat: []string{"i386", "x32"}},
	"i386": {Name: "i386", GOARCH: "386", QEMU: "i386", ELFMachine: elf.EM_386, ELFClass: elf.ELFCLASS32,
		GrubEFI: "i386-efi", EFIBoot: "BOOTIA32.EFI", GrubEFIPackage: "grub-efi-ia32", Console: ttyS,
		QEMUSystem: "qemu-system-x86_64", QEMUMachine: "pc"},
	"arm64": {Name: "arm64", GOARCH: "arm64", QEMU: "aarch64", ELFMachine: elf.EM_AARCH64, ELFClass: elf.ELFCLASS64,
		GrubEFI: "arm64-efi", EFIBoot: "BOOTAA64.EFI", GrubEFIPackage: "grub-efi-arm64", Console: ttyAM,
		QEMUSystem: "qemu-system-aarch64", QEMUMachine: "virt", QEMUCPU: "max,pauth-impdef=on", Compat: []string{"armhf", "armel"}},
	"armhf": {Name: "armhf", GOARCH: "arm", QEMU: "arm", ELFMachine: elf.EM_ARM, ELFClass: elf.ELFCLASS32,
		GrubEFI: "arm-efi", EFIBoot: "BOOTARM.EFI", GrubEFIPackage: "grub-efi-arm", Console: ttyAM,
		QEMUSystem: "qemu-system-arm", QEMUMachine: "virt", QEMUCPU: "max"},
	"armel": {Name: "armel", QEMU: "arm", ELFMachine: elf.EM_ARM, ELFClass: elf.ELFCLASS32, Console: ttyAM},
	"ppc64el": {Name: "ppc64el", GOARCH: "ppc64le", QEMU: "ppc64le", ELFMachine: elf.EM_PPC64, ELFClass: elf.ELFCLASS64,
		GrubIEEE1275: true, Console: hvc, QEMUSystem: "qemu-system-ppc64", QEMUMachine: "pseries"},
	"ppc64": {Name: "ppc64", GOARCH: "ppc64", QEMU: "ppc64", ELFMachine: elf.EM_PPC64, ELFClass: elf.ELFCLASS64,
		GrubIEEE1275: true, Console: hvc, QEMUSystem: "qemu-system-ppc64", QEMUMachine: "pseries"},
	"powerpc": {Name: "powerpc", QEMU: "ppc", ELFMachine: elf.EM_PPC, ELFClass: elf.ELFCLASS32, GrubIEEE1275: true, Console: ttyS},
	"s390x":   {Name: "s390x", GOARCH: "s390x", QEMU: "s390x", ELFMachine: elf.EM_S390, ELFClass: elf.ELFCLASS64, Console: ttyS},
	"riscv64": {Name: "riscv64", GOARCH: "riscv64", QEMU: "riscv64", ELFMachine: elf.EM_RISCV, ELFClass: elf.ELFCLASS64, Console: ttyS},
	"mips64el": {Name: "mips64el", GOARCH: "mips64le", QEMU: "mips64el", ELFMachine: elf.EM_MIPS, ELFClass: elf.ELFCLASS64,
		Console: ttyS},
	"mipsel":  {Name: "mipsel", GOARCH: "mipsle", QEMU: "mipsel", ELFMachine: elf.EM_MIPS, ELFClass: elf.ELFCLASS32, Console: ttyS},
	"loong64": {Name: "loong64", GOARCH: "loong64", QEMU: "loongarch64", ELFMachine: elf.EM_LOONGARCH, ELFClass: elf.ELFCLASS64, Console: ttyS},
	"alpha":   {Name: "alpha", QEMU: "alpha", ELFMachine: elf.EM_ALPHA, ELFClass: elf.ELFCLASS64, Console: ttyS},
	"hppa":    {Name: "hppa", QEMU: "hppa", ELFMachine: elf.EM_PARISC, ELFClass: elf.ELFCLASS32, Console: ttyS},
	"m68k":    {Name: "m68k", QEMU: "m68k", ELFMachine: elf.EM_68K, ELFClass: elf.ELFCLASS32, Console: ttyS},
	"sh4":     {Name: "sh4", QEMU: "sh4", ELFMachine: elf.EM_SH, ELFClass: elf.ELFCLASS32, Console: ttyS},
	"sparc64": {Name: "sparc64", GOARCH: "sparc64", QEMU: "sparc64", ELFMachine: elf.EM_SPARCV9, ELFClass: elf.ELFCLASS64, Console: ttyS},
}

// Get returns the Debian architecture name.
func Get(name string) (Arch, bool) {
	a, ok := table[name]
	return a, ok
}

// Lookup is Get with an error for an unknown name that lists the known
// ones.
func Lookup(name string) (Arch, error) {
	if a, ok := table[name]; ok {
		return a, nil
	}
	return Arch{}, fmt.Errorf("unknown Debian architecture %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Names returns every architecture's name, sorted.
func Names() []string {
	var n []string
	for k := range table {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Host returns the Debian architecture this program runs on, which vmdb2
// gets from `dpkg --print-architecture`; mapping Go's name avoids needing
// dpkg on the host.
func Host() (Arch, error) { return forGOARCH(runtime.GOARCH) }

func forGOARCH(goarch string) (Arch, error) {
	for _, a := range table {
		if a.GOARCH == goarch {
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("no Debian architecture known for GOARCH %s: give the arch explicitly", goarch)
}

// Console returns the serial console of `console: serial` for the
// Debian architecture name: the table's, or vmdb2's rule for a name not
// in it.
func Console(name string) string {
	if a, ok := table[name]; ok {
		return a.Console
	}
	switch {
	case strings.Contains(name, "ppc64"):
		return hvc
	case strings.Contains(name, "arm"):
		return ttyAM
	}
	return ttyS
}

// EFIArches returns the architectures Debian has EFI GRUB for, sorted.
func EFIArches() []string { return namesWhere(func(a Arch) bool { return a.GrubEFI != "" }) }

// IEEE1275Arches returns the architectures whose grub-ieee1275 is GRUB
// for PowerPC Open Firmware, sorted.
func IEEE1275Arches() []string { return namesWhere(func(a Arch) bool { return a.GrubIEEE1275 }) }

func namesWhere(f func(Arch) bool) []string {
	var n []string
	for _, k := range Names() {
		if f(table[k]) {
			n = append(n, k)
		}
	}
	return n
}
