package rootfs

import (
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/asuser"
)

// TestAsOrdinaryUser re-runs the tree tests as an ordinary user with
// subordinate ids, where Pack and Unpack go through the user namespace and
// devices through the manifest.
func TestAsOrdinaryUser(t *testing.T) {
	asuser.Run(t, "TestTree", "TestReproducible", "TestHostile", "TestRoundTripOwnIDs", "TestPackAtomic", "TestMissingTarball", "TestDamagedTarball", "TestDataAfterTheStream")
}
