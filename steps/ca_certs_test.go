package steps

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
)

// TestDebootstrapKeys041: vmdb2 0.41's debootstrap keys are planned;
// tls_ca_certs without .crt is refused at its line, and `exclude` selects
// debootstrap (mmdebstrap has no --exclude).
func TestDebootstrapKeys041(t *testing.T) {
	head := "steps:\n- debootstrap: bookworm\n  target: root\n  mirror: http://deb.debian.org/debian\n"
	p, ds := planText(t, DefaultRegistry(), head+"  exclude: [nano, vim-tiny]\n  tls_ca_certs: [ca/company.crt]\n", Vars{})
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("0.41 keys: %v", ds)
	}
	s := p.Steps[0]
	if got := s.Strings("exclude"); strings.Join(got, ",") != "nano,vim-tiny" {
		t.Errorf("exclude = %v", got)
	}
	if e := bootstrapEngine(s); e != bootstrap.EngineDebootstrap {
		t.Errorf("engine with exclude = %s, want debootstrap", e)
	}
	p, _ = planText(t, DefaultRegistry(), head, Vars{})
	if e := bootstrapEngine(p.Steps[0]); e != bootstrap.EngineMmdebstrap {
		t.Errorf("engine without exclude = %s, want mmdebstrap", e)
	}
	_, ds = planText(t, DefaultRegistry(), head+"  tls_ca_certs:\n  - company.pem\n", Vars{})
	if !ds.HasErrors() || !strings.Contains(ds.Errors()[0].String(), `t.vmdb:5: debootstrap: tls_ca_certs: "company.pem" does not have a ".crt" suffix`) {
		t.Errorf("a .pem certificate: %v", ds)
	}
}

// TestReadHostCert: a regular file is read; a FIFO is refused without
// blocking, as is a missing file.
func TestReadHostCert(t *testing.T) {
	dir := t.TempDir()
	crt := filepath.Join(dir, "a.crt")
	os.WriteFile(crt, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644)
	if b, err := readHostCert(crt); err != nil || !strings.HasPrefix(string(b), "-----BEGIN") {
		t.Errorf("regular file: %q %v", b, err)
	}
	fifo := filepath.Join(dir, "f.crt")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readHostCert(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v", err)
	}
	if _, err := readHostCert(filepath.Join(dir, "missing.crt")); err == nil {
		t.Error("a missing file was read")
	}
}
