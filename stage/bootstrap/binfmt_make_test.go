package bootstrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// makeBinfmtArches are the qemu-user handlers `make deps` registers.
var makeBinfmtArches = []string{"aarch64", "arm", "riscv64", "ppc64le"}

// TestMakeBinfmt runs the Makefile's binfmt target (what `make deps`
// runs) against a fake binfmt_misc directory: a handler that is missing
// is registered with qemu-user-static's line (F flag included), one that
// is there is left alone, and no other architecture is registered.
func TestMakeBinfmt(t *testing.T) {
	testreq.NeedTools(t, "make")
	confDir := t.TempDir()
	for _, q := range append([]string{"s390x", "mips64el"}, makeBinfmtArches...) {
		line := ":qemu-" + q + ":M::\\x7fELF:\\xff:/usr/libexec/qemu-binfmt/" + q + "-binfmt-P:OPF\n"
		if err := os.WriteFile(filepath.Join(confDir, "qemu-"+q+".conf"), []byte("# qemu-user-static\n"+line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(missing string) (register, out string) {
		t.Helper()
		dir := t.TempDir()
		for _, q := range makeBinfmtArches {
			if q != missing {
				os.WriteFile(filepath.Join(dir, "qemu-"+q), []byte("enabled\nflags: POCF\n"), 0o644)
			}
		}
		reg := filepath.Join(dir, "register")
		if err := os.WriteFile(reg, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("make", "-s", "--no-print-directory", "-C", filepath.Join("..", ".."), "binfmt",
			"BINFMT_MISC="+dir, "BINFMT_CONF="+confDir)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make binfmt: %v\n%s", err, b)
		}
		got, _ := os.ReadFile(reg)
		return string(got), string(b)
	}
	for _, q := range makeBinfmtArches {
		reg, out := run(q)
		want := ":qemu-" + q + ":M::\\x7fELF:\\xff:/usr/libexec/qemu-binfmt/" + q + "-binfmt-P:OPF\n"
		if reg != want {
			t.Errorf("%s missing: registered %q, want %q (make said %q)", q, reg, want, out)
		}
		if !strings.Contains(out, "registered the qemu-"+q+" binfmt_misc handler") {
			t.Errorf("%s missing: make said %q", q, out)
		}
	}
	if reg, out := run(""); reg != "" || out != "" {
		t.Errorf("all registered: make wrote %q to register and said %q", reg, out)
	}
}
