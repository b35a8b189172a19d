package qemuboot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecureBootArgs checks what QEMU is given for SecureBoot: a q35
// machine with SMM, pflash writable only from SMM, the Secure Boot build
// of OVMF read-only and a private copy of the variables with Microsoft's
// keys; and that UEFI stays as it was.
func TestSecureBootArgs(t *testing.T) {
	withFakeQEMU(t, argsQEMU)
	// Stand-ins for the firmware files too: the test must not depend on
	// the host's ovmf package.
	dir := t.TempDir()
	code, vars := filepath.Join(dir, "CODE.secboot.fd"), filepath.Join(dir, "VARS.ms.fd")
	uefiCode, uefiVars := filepath.Join(dir, "CODE.fd"), filepath.Join(dir, "VARS.fd")
	for p, s := range map[string]string{code: "code", vars: "ms vars", uefiCode: "uefi code", uefiVars: "uefi vars"} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oldCode, oldVars, oldUEFICode, oldUEFIVars := OVMFSecureCode, OVMFMSVars, OVMFCode, OVMFVars
	OVMFSecureCode, OVMFMSVars, OVMFCode, OVMFVars = code, vars, uefiCode, uefiVars
	t.Cleanup(func() { OVMFSecureCode, OVMFMSVars, OVMFCode, OVMFVars = oldCode, oldVars, oldUEFICode, oldUEFIVars })

	args := func(fw Firmware) string {
		vm, err := Boot(t.Context(), fakeImage(t), fw, nil)
		out := printedArgs(t, vm, err)
		defer vm.Close()
		// The private copy of the variables has the template's content.
		for _, l := range strings.Split(out, "\n") {
			if p, ok := strings.CutPrefix(l, "ARG if=pflash,format=raw,unit=1,file="); ok {
				if b, err := os.ReadFile(p); fw == SecureBoot && (err != nil || string(b) != "ms vars") {
					t.Errorf("variables %s: %q, %v; want a copy of %s", p, b, err, vars)
				}
			}
		}
		return out
	}
	sb := args(SecureBoot)
	for _, want := range []string{
		"ARG -machine\nARG q35,smm=on\n",
		"ARG -global\nARG driver=cfi.pflash01,property=secure,value=on\n",
		"ARG if=pflash,format=raw,unit=0,readonly=on,file=" + code + "\n",
	} {
		if !strings.Contains(sb, want) {
			t.Errorf("SecureBoot: no %q in\n%s", want, sb)
		}
	}
	if u := args(UEFI); strings.Contains(u, "smm") || !strings.Contains(u, "file="+OVMFCode+"\n") {
		t.Errorf("UEFI changed:\n%s", u)
	}
	if SecureBoot.String() == UEFI.String() {
		t.Error("SecureBoot and UEFI have one name")
	}
}
