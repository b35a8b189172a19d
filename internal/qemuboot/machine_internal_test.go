package qemuboot

import (
	"slices"
	"testing"
)

// TestHasVirtFlag: KVM is used on x86 only when the CPU advertises VT-x or
// AMD-V, whatever /dev/kvm says.
func TestHasVirtFlag(t *testing.T) {
	for _, c := range []struct {
		cpuinfo string
		want    bool
	}{
		{"processor\t: 0\nflags\t\t: fpu vme de pse vmx sse\n", true},
		{"processor\t: 0\nflags\t\t: fpu svm lm\n", true},
		{"processor\t: 0\nflags\t\t: fpu vme de pse tsc msr hypervisor\nvmx flags\t: vnmi\n", false},
		{"flags: fpu vmxon\n", false},
		{"", false},
	} {
		if got := hasVirtFlag(c.cpuinfo); got != c.want {
			t.Errorf("hasVirtFlag(%q) = %v, want %v", c.cpuinfo, got, c.want)
		}
	}
}

// TestMachineArgsCPUs: a TCG guest gets one vCPU (two TCG guests of two
// vCPUs beside a build on 2 cores reported soft lockups), a KVM guest two.
func TestMachineArgsCPUs(t *testing.T) {
	for _, c := range []struct {
		accel Accel
		want  string
	}{{TCG, "1"}, {KVM, "2"}} {
		_, args, err := machineArgs(BIOS, c.accel, "/img", t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.Index(args, "-smp")
		if i < 0 || i+1 >= len(args) || args[i+1] != c.want {
			t.Errorf("%v: %q, want -smp %s", c.accel, args, c.want)
		}
	}
}

// TestMachineArgsARMCPU: under TCG, arm64 machines get the max CPU with
// QEMU's fast pointer authentication (the architected algorithm doubles an
// arm64 boot's time), armhf's the max CPU (qemu-system-arm has no such
// property), and KVM the host's CPU.
func TestMachineArgsARMCPU(t *testing.T) {
	for _, c := range []struct {
		fw    Firmware
		accel Accel
		want  string
	}{{AAVMF, TCG, "max,pauth-impdef=on"}, {AAVMF32, TCG, "max"}, {AAVMF, KVM, "host"}} {
		_, args, err := machineArgs(c.fw, c.accel, "/img", t.TempDir(), nil)
		if err != nil {
			t.Skipf("%v: %v (its firmware is not installed)", c.fw, err)
		}
		i := slices.Index(args, "-cpu")
		if i < 0 || i+1 >= len(args) || args[i+1] != c.want {
			t.Errorf("%v %v: %q, want -cpu %s", c.fw, c.accel, args, c.want)
		}
	}
}
