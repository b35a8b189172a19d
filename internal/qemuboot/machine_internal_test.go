package qemuboot

import "testing"

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
