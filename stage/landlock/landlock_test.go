package landlock

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestRunConfinesWrites: a command run confined can write beneath the
// directory and nowhere else, whatever symbolic link leads it out; this
// process is not confined afterwards.
func TestRunConfinesWrites(t *testing.T) {
	_, err := ABI()
	testreq.Need(t, testreq.Userns, err)
	top := t.TempDir()
	in, out := filepath.Join(top, "in"), filepath.Join(top, "out")
	for _, d := range []string{in, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(out, filepath.Join(in, "escape")); err != nil {
		t.Fatal(err)
	}
	script := "echo ok > ok && { echo bad > escape/x || true; } && { mkdir escape/d || true; } && { echo bad > ../out/y || true; }"
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = in
	if err := Run(in, cmd); err != nil {
		t.Fatalf("confined sh: %v", err)
	}
	if _, err := os.Stat(filepath.Join(in, "ok")); err != nil {
		t.Errorf("the write inside was refused: %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("writes outside got through: %v", ents)
	}
	if err := Run(in, exec.Command("sh", "-c", "cd "+in+" && echo bad > escape/x")); err == nil {
		t.Errorf("a write through a link out of the directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(out, "x")); err == nil {
		t.Errorf("escape/x was written outside")
	}
	if err := os.WriteFile(filepath.Join(out, "after"), nil, 0o644); err != nil {
		t.Errorf("the calling process was confined too: %v", err)
	}
}
