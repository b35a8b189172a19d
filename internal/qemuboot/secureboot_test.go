package qemuboot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecureBootArgs checks what QEMU is given for SecureBoot: a q35
// machine with SMM, pflash writable only from SMM, the Secure Boot build
// of OVMF read-only and a private copy of the variables with Microsoft's
// keys; and that UEFI stays as it was.
func TestSecureBootArgs(t *testing.T) {
	// The stand-in prints its arguments, one a line, then idles.
	withFakeQEMU(t, "#!/bin/sh\nfor a in \"$@\"; do printf 'ARG %s\\n' \"$a\"; done\necho DONE\nexec sleep 60\n")
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
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Close()
		if err := vm.WaitFor(`DONE`, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		out := vm.Output()
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
