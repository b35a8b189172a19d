package fat

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// readAt reads n bytes of a file at off.
func readAt(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	return b, err
}

// requireTools skips the test in -short mode and fails it, with the fix,
// when one of the host tools it checks the filesystem with (dosfstools,
// mtools) is missing.
func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("checks with host tools are skipped in -short mode")
	}
	testreq.NeedTools(t, tools...)
}

// bootFields is what a boot sector says, read independently of Geometry's
// own computations so tests can compare both ways.
type bootFields struct {
	OEM               string
	BytesPerSector    uint16
	SectorsPerCluster uint8
	Reserved          uint16
	NumFATs           uint8
	RootEntries       uint16
	TotalSectors      uint32
	Media             byte
	FATSectors        uint32
	SectorsPerTrack   uint16
	Heads             uint16
	Hidden            uint32
	FATType           string // from the boot sector's type string
	VolumeID          uint32
	Label             string
	RootCluster       uint32
	InfoSector        uint16
	BackupBoot        uint16
	Signature         uint16
}

func parseBoot(b []byte) (bootFields, error) {
	var f bootFields
	if len(b) < 512 {
		return f, fmt.Errorf("short boot sector")
	}
	le := binary.LittleEndian
	f.OEM = string(b[3:11])
	f.BytesPerSector = le.Uint16(b[11:])
	f.SectorsPerCluster = b[13]
	f.Reserved = le.Uint16(b[14:])
	f.NumFATs = b[16]
	f.RootEntries = le.Uint16(b[17:])
	f.TotalSectors = uint32(le.Uint16(b[19:]))
	if f.TotalSectors == 0 {
		f.TotalSectors = le.Uint32(b[32:])
	}
	f.Media = b[21]
	f.FATSectors = uint32(le.Uint16(b[22:]))
	f.SectorsPerTrack = le.Uint16(b[24:])
	f.Heads = le.Uint16(b[26:])
	f.Hidden = le.Uint32(b[28:])
	vi := 36
	if f.FATSectors == 0 {
		f.FATSectors = le.Uint32(b[36:])
		f.RootCluster = le.Uint32(b[44:])
		f.InfoSector = le.Uint16(b[48:])
		f.BackupBoot = le.Uint16(b[50:])
		vi = 64
	}
	f.VolumeID = le.Uint32(b[vi+3:])
	f.Label = string(b[vi+7 : vi+18])
	f.FATType = string(b[vi+18 : vi+26])
	f.Signature = le.Uint16(b[510:])
	return f, nil
}
