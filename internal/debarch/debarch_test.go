package debarch

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestTable: every entry is filed under its own name, Go's names map to
// one architecture each, the EFI fields come all together, and the serial
// console is what vmdb2's rule gives.
func TestTable(t *testing.T) {
	goarch := map[string]string{}
	for _, n := range Names() {
		a, _ := Get(n)
		if a.Name != n || a.QEMU == "" || a.ELFMachine == 0 || a.ELFClass == 0 {
			t.Errorf("%s: incomplete entry %+v", n, a)
		}
		if a.GOARCH != "" {
			if other, dup := goarch[a.GOARCH]; dup {
				t.Errorf("GOARCH %s is both %s and %s", a.GOARCH, other, n)
			}
			goarch[a.GOARCH] = n
		}
		if efi := []string{a.GrubEFI, a.EFIBoot, a.GrubEFIPackage}; (efi[0] == "") != (efi[1] == "") || (efi[0] == "") != (efi[2] == "") {
			t.Errorf("%s: EFI fields %q must be all set or all empty", n, efi)
		}
		if (a.QEMUSystem == "") != (a.QEMUMachine == "") {
			t.Errorf("%s: QEMU system %q and machine %q", n, a.QEMUSystem, a.QEMUMachine)
		}
		if want := vmdb2Console(n); a.Console != want {
			t.Errorf("%s: console %s, vmdb2 gives %s", n, a.Console, want)
		}
		for _, c := range a.Compat {
			if _, ok := Get(c); !ok && c != "x32" {
				t.Errorf("%s: compat %s not in the table", n, c)
			}
		}
	}
	if Console("armeb") != "ttyAMA0" || Console("ppc64x") != "hvc0" || Console("xyz") != "ttyS0" {
		t.Error("Console of names outside the table does not follow vmdb2's rule")
	}
	if _, err := Lookup("armel"); err != nil {
		t.Error(err)
	}
	if _, err := Lookup("vax"); err == nil || !strings.Contains(err.Error(), "arm64") {
		t.Errorf("Lookup(vax): %v", err)
	}
	if a, _ := Get("arm64"); a.EFIName() != "aa64" || a.Binfmt() != "qemu-aarch64" {
		t.Errorf("arm64: EFI name %q, binfmt %q", a.EFIName(), a.Binfmt())
	}
	if a, _ := Get("armel"); a.GrubEFI != "" {
		t.Error("armel has no EFI GRUB in Debian")
	}
	if got := fmt.Sprint(EFIArches()); got != "[amd64 arm64 armhf i386]" {
		t.Errorf("EFIArches = %s", got)
	}
	if got := fmt.Sprint(IEEE1275Arches()); got != "[powerpc ppc64 ppc64el]" {
		t.Errorf("IEEE1275Arches = %s", got)
	}
	for _, g := range []string{"amd64", "arm64", "arm", "386", "ppc64le"} {
		if _, err := forGOARCH(g); err != nil {
			t.Error(err)
		}
	}
	if _, err := forGOARCH("wasm"); err == nil {
		t.Error("wasm has a Debian architecture")
	}
}

// vmdb2Console is vmdb2's grub plugin's choice of serial console.
func vmdb2Console(arch string) string {
	switch {
	case strings.Contains(arch, "ppc64"):
		return "hvc0"
	case strings.Contains(arch, "arm"):
		return "ttyAMA0"
	}
	return "ttyS0"
}

// binfmtConfDir holds qemu-user-static's registration lines.
const binfmtConfDir = "/usr/lib/binfmt.d"

// TestBinfmtMagic: each architecture's qemu-user registration (in
// qemu-user-static's /usr/lib/binfmt.d) matches ELF files of the table's
// class and machine, so the QEMU and ELF fields agree with each other.
func TestBinfmtMagic(t *testing.T) {
	if _, err := os.Stat(filepath.Join(binfmtConfDir, "qemu-aarch64.conf")); err != nil {
		testreq.Need(t, testreq.Foreign, fmt.Errorf("%w (install qemu-user-static)", err))
	}
	for _, n := range Names() {
		a, _ := Get(n)
		b, err := os.ReadFile(filepath.Join(binfmtConfDir, a.Binfmt()+".conf"))
		if err != nil {
			if a.QEMU != "x86_64" && a.QEMU != "i386" { // no self-emulation on amd64
				t.Errorf("%s: %v", n, err)
			}
			continue
		}
		class, machine, err := confELF(string(b))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if class != a.ELFClass || machine != a.ELFMachine {
			t.Errorf("%s: %s matches %v %v; the table says %v %v", n, a.Binfmt(), class, machine, a.ELFClass, a.ELFMachine)
		}
	}
}

// confELF decodes the ELF class and machine a binfmt.d registration line
// (:name:M::magic:mask:interpreter:flags) matches.
func confELF(conf string) (elf.Class, elf.Machine, error) {
	for _, line := range strings.Split(conf, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 7 || f[2] != "M" {
			return 0, 0, fmt.Errorf("not a magic registration: %q", line)
		}
		magic, err := unescape(f[4])
		if err != nil || len(magic) < 20 {
			return 0, 0, fmt.Errorf("magic %q: %v", f[4], err)
		}
		order := binary.ByteOrder(binary.LittleEndian)
		if magic[5] == byte(elf.ELFDATA2MSB) {
			order = binary.BigEndian
		}
		return elf.Class(magic[4]), elf.Machine(order.Uint16(magic[18:20])), nil
	}
	return 0, 0, fmt.Errorf("no registration line")
}

// unescape decodes binfmt_misc's \xHH escapes.
func unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return nil, err
			}
			out = append(out, byte(v))
			i += 3
			continue
		}
		out = append(out, s[i])
	}
	return out, nil
}
