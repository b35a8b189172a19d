package steps

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// TestMissingProgramNamesPackage: a program that is not there at run time
// is reported with the Debian package that provides it, from the same
// table the preflight uses, whichever way it was run.
func TestMissingProgramNamesPackage(t *testing.T) {
	hostPackages["vmdb2-no-such-tool"] = "vmdb2-test-package"
	defer delete(hostPackages, "vmdb2-no-such-tool")
	want := "program vmdb2-no-such-tool not found: install the Debian package vmdb2-test-package"

	b := NewBuild(&Plan{}, Settings{}, &recorder{})
	if err := b.Command([]string{"vmdb2-no-such-tool"}, CommandOptions{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Command: %v", err)
	}
	// The namespace runner's own wording for a missing program.
	nsErr := errors.New("cannot run vmdb2-no-such-tool: not found in PATH /usr/bin:/bin")
	if err := hostToolMissing("vmdb2-no-such-tool", nsErr); !strings.Contains(err.Error(), want) {
		t.Errorf("namespace error: %v", err)
	}
	if os.Geteuid() == 0 {
		err := b.ToolRunner()(context.Background(), fstool.Command{Args: []string{"vmdb2-no-such-tool"}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ToolRunner: %v", err)
		}
	}
	if err := hostToolMissing("x", errors.New("exit status 1")); err.Error() != "exit status 1" {
		t.Errorf("other errors must stay as they are: %v", err)
	}
	if hostToolFound("vmdb2-no-such-tool") || !hostToolFound("sh") {
		t.Error("hostToolFound is wrong")
	}
}
