package steps

import (
	"os"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

func TestMain(m *testing.M) {
	userns.Init()
	// Re-executed by TestRunnerChildDiesWithBuild as a build to be killed.
	if mode := os.Getenv(orphanEnv); mode != "" {
		orphanHelper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
