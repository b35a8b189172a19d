package steps

import (
	"os"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

func TestMain(m *testing.M) {
	userns.Init()
	os.Exit(m.Run())
}
