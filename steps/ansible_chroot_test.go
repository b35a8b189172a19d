package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAnsibleChrootServesOnlyItsTree: the chroot program reaches the build
// through the socket, and the build runs commands only in the tree it
// serves; a request for another directory (a process of the namespace
// asking for the host's /, say) is refused.
func TestAnsibleChrootServesOnlyItsTree(t *testing.T) {
	meta, root := t.TempDir(), t.TempDir()
	b := &Build{Plan: &Plan{}, obs: &recorder{}, ctx: context.Background()}
	env, stop, err := b.ansibleChroot(meta, root)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	prog := os.Getenv("ANSIBLE_CHROOT_EXE")
	if filepath.Base(prog) != ansibleChrootName {
		t.Fatalf("ANSIBLE_CHROOT_EXE=%q", prog)
	}
	code, err := askBuild([]string{prog, "/", "/bin/sh", "-c", "true"})
	if code != 125 || err == nil || !strings.Contains(err.Error(), "only "+root+" can be entered") {
		t.Errorf("a request for / got %d, %v", code, err)
	}
	if code, ok := AnsibleChroot([]string{"/usr/bin/chroot"}); ok {
		t.Errorf("another program name was taken for the chroot program (%d)", code)
	}

}
