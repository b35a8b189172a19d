package steps

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
	"github.com/vmdb2-go/vmdb2/internal/canary"
)

// TestHasPython3InTarget: python3 is looked for inside the target, as
// Ansible's chroot connection finds it; a link to a host tree that has
// python3 does not count.
func TestHasPython3InTarget(t *testing.T) {
	for _, p := range []string{"usr/bin/python3", "usr/local/bin/python3", "bin/python3"} {
		for _, trap := range canary.Traps {
			t.Run(p+"/"+string(trap), func(t *testing.T) {
				host := canary.New(t, "python3", "bin/python3", "local/bin/python3")
				root := t.TempDir()
				host.Plant(t, root, p, trap)
				if hasPython3(root) {
					t.Errorf("found python3 through %s at %s, which leads out of the target", trap, p)
				}
				host.Check(t)
			})
		}
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	if hasPython3(root) {
		t.Error("an empty target has python3")
	}
	os.WriteFile(filepath.Join(root, "usr/bin/python3.11"), nil, 0o755)
	os.Symlink("/usr/bin/python3.11", filepath.Join(root, "usr/bin/python3"))
	if !hasPython3(root) {
		t.Error("python3 -> /usr/bin/python3.11 of the target not found")
	}
}

func TestHasPython3AsOrdinaryUser(t *testing.T) {
	asuser.Run(t, "TestHasPython3InTarget")
}
