package rootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestAsOrdinaryUser re-runs the tree tests as an ordinary user with
// subordinate ids (created with useradd if needed), where Pack and Unpack go
// through the user namespace and devices through the manifest.
func TestAsOrdinaryUser(t *testing.T) {
	if testing.Short() {
		t.Skip("uses namespaces: skipped with -short")
	}
	testreq.NeedRoot(t, "to create the test user and run the tests as it")
	const user = "vmdb2-test"
	if err := exec.Command("id", user).Run(); err != nil {
		if b, err := exec.Command("useradd", "-m", user).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v\n%s", err, b)
		}
	}
	dir, err := os.MkdirTemp("", "rootfs-user-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "rootfs.test")
	gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if b, err := exec.Command(gotool, "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, b)
	}
	tests := []string{"TestTree", "TestReproducible", "TestHostile", "TestRoundTripOwnIDs", "TestPackAtomic", "TestMissingTarball"}
	cmd := exec.Command("setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "--",
		"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/", "TMPDIR=/tmp", "USER="+user,
		bin, "-test.v", "-test.count=1", "-test.timeout=10m", "-test.run", "^("+strings.Join(tests, "|")+")$")
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	out := string(b)
	t.Logf("as %s:\n%s", user, out)
	if err != nil {
		t.Fatalf("tests as %s failed: %v", user, err)
	}
	for _, name := range tests {
		if !strings.Contains(out, "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass as %s", name, user)
		}
	}
	if strings.Contains(out, "--- SKIP") {
		t.Errorf("tests were skipped as %s", user)
	}
}
