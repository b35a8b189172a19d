package bootstrap

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// TestEngineHome: the engine sees an empty /root as its HOME on the host
// side, so the dpkg it runs there reads no settings of the host's root and,
// as an ordinary user (TestEngineHomeAsOrdinaryUser), prints no warning
// that /root/.dpkg.cfg cannot be read; the directory goes afterwards.
func TestEngineHome(t *testing.T) {
	testreq.NeedTools(t, "dpkg")
	testreq.Need(t, testreq.Userns, userns.Available())
	tmp := t.TempDir()
	var out bytes.Buffer
	o := Options{Suite: "probe", Target: "/", TempDir: tmp, Stdout: &out, Stderr: &out}
	err := runEngine(context.Background(), o, []string{"sh", "-c", `ls -A /root; echo "HOME=$HOME"; dpkg --print-architecture`}, engineEnv(nil), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != "HOME=/root" || strings.Contains(out.String(), "warning") {
		t.Errorf("want HOME=/root, an empty /root and no dpkg warning, got:\n%s", out.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the engine's home was left in its temporary directory: %v", left)
	}
}

func TestEngineHomeAsOrdinaryUser(t *testing.T) {
	asuser.Run(t, "TestEngineHome")
}
