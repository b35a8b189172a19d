package qemuboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
)

// Firmware chooses the machine and the firmware the VM boots with.
type Firmware int

const (
	// BIOS is qemu-system-x86_64's default SeaBIOS.
	BIOS Firmware = iota
	// UEFI is OVMF from Debian's ovmf package, as two pflash drives: the
	// code read-only and a private writable copy of the variable store.
	UEFI
	// SecureBoot is OVMF built with Secure Boot and SMM (OVMFSecureCode)
	// with a variable store that has Microsoft's keys enrolled and Secure
	// Boot enforced (OVMFMSVars), on a q35 machine with SMM, whose
	// pflash only SMM code may write (as Secure Boot OVMF requires). It
	// starts only binaries signed by Microsoft (such as Debian's shim) or
	// by a key in its db; anything else ends in "Access Denied".
	SecureBoot
	// AAVMF is UEFI on arm64: qemu-system-aarch64's virt machine with
	// AAVMF (Debian's qemu-efi-aarch64) as two pflash drives, like UEFI's.
	AAVMF
	// SLOF is Open Firmware (IEEE 1275) on qemu-system-ppc64's pseries
	// machine (what IBM POWER servers under PowerVM look like), which
	// loads the boot loader from the disk's PReP boot partition.
	SLOF
	// ARM64Kernel is qemu-system-aarch64's virt machine without firmware:
	// QEMU itself loads the Linux kernel and initrd given to BootKernel
	// and hands them the command line, as a board's boot loader would
	// (a Raspberry Pi's kernel from its firmware partition: QEMU cannot
	// run the Pi's GPU firmware). The image is the VM's disk.
	ARM64Kernel
	// AAVMF32 is UEFI on 32-bit ARM (armhf): qemu-system-arm's virt
	// machine with AAVMF32 (Debian's qemu-efi-arm) as two pflash drives.
	AAVMF32
)

func (f Firmware) String() string {
	switch f {
	case UEFI:
		return "UEFI (OVMF)"
	case SecureBoot:
		return "UEFI Secure Boot (OVMF, Microsoft keys)"
	case AAVMF:
		return "arm64 UEFI (AAVMF)"
	case SLOF:
		return "Open Firmware (SLOF, pseries)"
	case ARM64Kernel:
		return "arm64 kernel loaded by QEMU (virt, no firmware)"
	case AAVMF32:
		return "armhf UEFI (AAVMF32)"
	}
	return "BIOS (SeaBIOS)"
}

// Emulators and firmware files (Debian bookworm's packages); variables so
// that tests can put stand-ins there.
var (
	// QEMU is the emulator of BIOS, UEFI and SecureBoot.
	QEMU = "qemu-system-x86_64"
	// QEMUAArch64 is AAVMF's emulator (package qemu-system-arm).
	QEMUAArch64 = "qemu-system-aarch64"
	// QEMUArm is AAVMF32's emulator (package qemu-system-arm).
	QEMUArm = "qemu-system-arm"
	// QEMUPPC64 is SLOF's emulator (package qemu-system-ppc).
	QEMUPPC64 = "qemu-system-ppc64"

	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// OVMFSecureCode and OVMFMSVars are SecureBoot's firmware: the
	// Secure Boot and SMM build, and variables with Microsoft's KEK and
	// db (Windows and third-party UEFI CAs) enrolled and Secure Boot on.
	OVMFSecureCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFMSVars     = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	// AAVMFCode and AAVMFVars are AAVMF's (package qemu-efi-aarch64).
	AAVMFCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
	// AAVMF32Code and AAVMF32Vars are AAVMF32's (package qemu-efi-arm).
	AAVMF32Code = "/usr/share/AAVMF/AAVMF32_CODE.fd"
	AAVMF32Vars = "/usr/share/AAVMF/AAVMF32_VARS.fd"
	// SLOFFile is the pseries firmware (package qemu-system-data, a
	// dependency of qemu-system-ppc).
	SLOFFile = "/usr/share/qemu/slof.bin"
)

// machine is what booting with one Firmware takes.
type machine struct {
	bin        string // the emulator
	binPkg     string // the Debian package that has it
	code, vars string // pflash firmware ("" for none)
	rom        string // -bios firmware ("" for the emulator's default)
	fwPkg      string // the Debian package of code, vars or rom
	arch       string // the guest's Debian architecture (KVM needs a host of it)
	kernel     bool   // QEMU loads a Kernel itself (BootKernel), no firmware
}

// IsUEFI says that f is an EDK II firmware (OVMF, AAVMF, AAVMF32), whose
// boot manager prints a "BdsDxe: " line for each boot option it tries.
func (f Firmware) IsUEFI() bool { return f.machine().code != "" }

func (f Firmware) machine() machine {
	switch f {
	case UEFI:
		return machine{bin: QEMU, binPkg: "qemu-system-x86", code: OVMFCode, vars: OVMFVars, fwPkg: "ovmf", arch: "amd64"}
	case SecureBoot:
		return machine{bin: QEMU, binPkg: "qemu-system-x86", code: OVMFSecureCode, vars: OVMFMSVars, fwPkg: "ovmf", arch: "amd64"}
	case AAVMF:
		return machine{bin: QEMUAArch64, binPkg: "qemu-system-arm", code: AAVMFCode, vars: AAVMFVars, fwPkg: "qemu-efi-aarch64", arch: "arm64"}
	case SLOF:
		return machine{bin: QEMUPPC64, binPkg: "qemu-system-ppc", rom: SLOFFile, fwPkg: "qemu-system-data", arch: "ppc64el"}
	case ARM64Kernel:
		return machine{bin: QEMUAArch64, binPkg: "qemu-system-arm", arch: "arm64", kernel: true}
	case AAVMF32:
		return machine{bin: QEMUArm, binPkg: "qemu-system-arm", code: AAVMF32Code, vars: AAVMF32Vars, fwPkg: "qemu-efi-arm", arch: "armhf"}
	}
	return machine{bin: QEMU, binPkg: "qemu-system-x86", arch: "amd64"}
}

// Available reports why fw cannot be booted on this host (naming the
// packages to install), or nil.
func Available(fw Firmware) error {
	m := fw.machine()
	var missing, pkgs []string
	if _, err := exec.LookPath(m.bin); err != nil {
		missing, pkgs = append(missing, m.bin), append(pkgs, m.binPkg)
	}
	for _, f := range []string{m.code, m.vars, m.rom} {
		if _, err := os.Stat(f); f != "" && err != nil {
			missing = append(missing, f)
			if !slices.Contains(pkgs, m.fwPkg) {
				pkgs = append(pkgs, m.fwPkg)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("qemu: booting with %v needs %s, missing here (install %s)", fw, strings.Join(missing, " and "), strings.Join(pkgs, " and "))
}

// AvailablePPC64 is Available(SLOF).
func AvailablePPC64() error { return Available(SLOF) }

// Accel is how QEMU runs the guest's code.
type Accel int

const (
	// TCG emulates the CPU: slower, needs nothing from the host.
	TCG Accel = iota
	// KVM runs the guest on the host's CPU (/dev/kvm, same architecture).
	KVM
)

func (a Accel) String() string {
	if a == KVM {
		return "KVM"
	}
	return "TCG"
}

// KVMAvailable reports why fw's guest cannot run under KVM here (the
// host has another architecture, its CPU does not advertise hardware
// virtualisation, or this process may not open /dev/kvm), or nil.
func KVMAvailable(fw Firmware) error {
	if m, host := fw.machine(), hostArch(); m.arch != host {
		return fmt.Errorf("the guest is %s, the host %s", m.arch, host)
	}
	if runtime.GOARCH == "amd64" {
		cpuinfo, err := os.ReadFile("/proc/cpuinfo")
		if err != nil {
			return err
		}
		if !hasVirtFlag(string(cpuinfo)) {
			return errors.New("the CPU does not advertise hardware virtualisation (no vmx or svm flag in /proc/cpuinfo)")
		}
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	f.Close()
	return nil
}

// hasVirtFlag reports whether an x86 /proc/cpuinfo lists vmx or svm. A
// /dev/kvm that opens without them (a virtual machine whose hypervisor
// offers KVM without exposing VT-x or AMD-V) runs SeaBIOS but stops OVMF
// with a KVM emulation failure, and the guest then hangs silently.
func hasVirtFlag(cpuinfo string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		name, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		for _, f := range strings.Fields(flags) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
	}
	return false
}

// machineArgs returns the emulator and its arguments for booting the raw
// image at abs with fw (its variable store copied into tmp), or with k
// loaded by QEMU (absolute paths) for a firmware-less machine: 1 GiB, one
// vCPU under TCG and two under KVM, the disk as virtio in snapshot mode, no
// network, no display, the console on stdin/stdout, no reboot. One vCPU
// under TCG because a guest whose second vCPU thread is descheduled on a
// busy host waits for it and reports soft lockups (164 s once, beside
// another boot and a build on 2 cores).
func machineArgs(fw Firmware, accel Accel, abs, tmp string, k *Kernel) (string, []string, error) {
	m := fw.machine()
	args := []string{"-accel", "tcg"}
	if accel == KVM {
		args = []string{"-accel", "kvm", "-cpu", "host"}
	}
	switch fw {
	case SecureBoot:
		args = append(args, "-machine", "q35,smm=on",
			"-global", "driver=cfi.pflash01,property=secure,value=on")
	case AAVMF, ARM64Kernel, AAVMF32:
		a, _ := debarch.Get(fw.machine().arch)
		args = append(args, "-machine", a.QEMUMachine)
		if accel == TCG && a.QEMUCPU != "" {
			args = append(args, "-cpu", a.QEMUCPU)
		}
	case SLOF:
		args = append([]string{"-M", ppc64Machine}, args...)
	}
	cpus := "1"
	if accel == KVM {
		cpus = "2"
	}
	args = append(args, "-m", "1024", "-smp", cpus)
	if m.rom != "" {
		args = append(args, "-bios", m.rom)
	}
	args = append(args,
		"-display", "none", "-vga", "none", "-monitor", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot",
		"-drive", "file="+abs+",format=raw,if=virtio,snapshot=on")
	if m.code != "" {
		vars := filepath.Join(tmp, "VARS.fd")
		if err := copyFile(m.vars, vars); err != nil {
			return "", nil, err
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+m.code,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
	}
	if k != nil {
		args = append(args, "-kernel", k.Image, "-append", k.CmdLine)
		if k.Initrd != "" {
			args = append(args, "-initrd", k.Initrd)
		}
	}
	return m.bin, args, nil
}

// hostArch is the Debian architecture of this host ("" if unknown).
func hostArch() string {
	a, _ := debarch.Host()
	return a.Name
}

// ppc64Machine is QEMU's pseries machine with the spectre-mitigation
// capabilities that TCG cannot provide turned off, which QEMU would
// otherwise only warn about.
const ppc64Machine = "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off"

// BootPPC64 is Boot with SLOF.
func BootPPC64(ctx context.Context, image string, log io.Writer) (*VM, error) {
	return Boot(ctx, image, SLOF, log)
}
