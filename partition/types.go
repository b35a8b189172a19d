package partition

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// GUID is a 16-byte identifier held in its textual (RFC 4122, big-endian)
// byte order: the bytes of "C12A7328-F81F-11D2-…" are C1 2A 73 28 F8 1F ….
// The on-disk GPT encoding (first three fields little-endian) is produced
// when a table is written.
type GUID [16]byte

// ParseGUID parses the textual form "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"
// (either case).
func ParseGUID(s string) (GUID, error) {
	var g GUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("invalid GUID %q: expected the form XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return g, fmt.Errorf("invalid GUID %q: %w", s, err)
	}
	copy(g[:], b)
	return g, nil
}

func mustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String returns the upper-case textual form, as sfdisk and parted print it.
func (g GUID) String() string {
	h := strings.ToUpper(hex.EncodeToString(g[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IsZero reports whether g is all zeros.
func (g GUID) IsZero() bool { return g == GUID{} }

// toDisk converts to the mixed-endian GPT encoding (and back: the swap is its
// own inverse).
func (g GUID) toDisk() [16]byte {
	var d [16]byte
	d[0], d[1], d[2], d[3] = g[3], g[2], g[1], g[0]
	d[4], d[5] = g[5], g[4]
	d[6], d[7] = g[7], g[6]
	copy(d[8:], g[8:])
	return d
}

func guidFromDisk(b []byte) GUID {
	var d GUID
	copy(d[:], b[:16])
	return GUID(GUID(d).toDisk())
}

// GPT partition type GUIDs parted 3.5 assigns.
var (
	TypeLinuxData     = mustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	TypeLinuxSwap     = mustGUID("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F")
	TypeLinuxHome     = mustGUID("933AC7E1-2EB4-4F13-B844-0E14E2AEF915")
	TypeLinuxRAID     = mustGUID("A19D880F-05FC-4D3B-A006-743F0F84911E")
	TypeLinuxLVM      = mustGUID("E6D6D379-F507-44C2-A23C-238F2A3DF928")
	TypeEFISystem     = mustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	TypeBIOSBoot      = mustGUID("21686148-6449-6E6F-744E-656564454649")
	TypeBasicData     = mustGUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")
	TypeMSReserved    = mustGUID("E3C9E316-0B5C-4DB8-817D-F92DF00215AE")
	TypeMSRecovery    = mustGUID("DE94BBA4-06D1-4D40-A16A-BFD50179D6AC")
	TypeHPService     = mustGUID("E2A1E728-32E3-11D6-A682-7B03A0000000")
	TypePReP          = mustGUID("9E1A2D38-C612-4316-AA26-8B49521E5A8B")
	TypeAppleHFS      = mustGUID("48465300-0000-11AA-AA11-00306543ECAC")
	TypeAppleTVRecov  = mustGUID("5265636F-7665-11AA-AA11-00306543ECAC")
	TypeIntelRST      = mustGUID("D3BFE2DE-3DAF-11DF-BA40-E3A556D89593")
	TypeChromeOSKern  = mustGUID("FE3A2A5D-4F32-41A7-B725-ACCC3285A309")
	TypeBootLoaderSpc = mustGUID("BC13C2FF-59E6-4262-A352-B275FD6F7172")
	TypeFreeBSDUFS    = mustGUID("516E7CB6-6ECF-11D6-8FF8-00022D09712B")
)

// fsTypes lists the file-system type names parted 3.5 accepts for mkpart
// (compared case-insensitively).
var fsTypes = []string{
	"affs0", "affs1", "affs2", "affs3", "affs4", "affs5", "affs6", "affs7",
	"amufs", "amufs0", "amufs1", "amufs2", "amufs3", "amufs4", "amufs5",
	"apfs1", "apfs2", "asfs", "btrfs", "ext2", "ext3", "ext4", "f2fs",
	"fat16", "fat32", "freebsd-ufs", "hfs", "hfs+", "hfsx", "hp-ufs", "jfs",
	"linux-swap", "linux-swap(new)", "linux-swap(old)", "linux-swap(v0)",
	"linux-swap(v1)", "nilfs2", "ntfs", "reiserfs", "sun-ufs", "swsusp",
	"udf", "xfs", "zfs",
}

// normFSType returns the canonical (lower-case) parted name of fs, "" for
// none, or an error listing the accepted names.
func normFSType(fs string) (string, error) {
	f := strings.ToLower(strings.TrimSpace(fs))
	if f == "" {
		return "", nil
	}
	for _, k := range fsTypes {
		if f == k {
			return f, nil
		}
	}
	hint := ""
	if f == "vfat" || f == "fat" || f == "msdos" || f == "fat12" {
		hint = " (for a FAT partition use fat16 or fat32)"
	}
	if f == "swap" {
		hint = " (use linux-swap)"
	}
	return "", fmt.Errorf("unknown file system type %q%s; parted knows: %s", fs, hint, strings.Join(fsTypes, ", "))
}

func isSwapFS(fs string) bool { return strings.HasPrefix(fs, "linux-swap") }

// MBR system ids.
const (
	mbrEmpty      = 0x00
	mbrFAT16      = 0x06
	mbrNTFS       = 0x07
	mbrFAT32      = 0x0b
	mbrFAT32LBA   = 0x0c
	mbrFAT16LBA   = 0x0e
	mbrExtLBA     = 0x0f
	mbrExtended   = 0x05
	mbrDiag       = 0x12
	mbrMSRecovery = 0x27
	mbrPReP       = 0x41
	mbrLinuxSwap  = 0x82
	mbrLinux      = 0x83
	mbrIRST       = 0x84
	mbrLinuxExt   = 0x85
	mbrLVM        = 0x8e
	mbrFreeBSD    = 0xa5
	mbrHFS        = 0xaf
	mbrSunUFS     = 0xbf
	mbrDellDiag   = 0xde
	mbrBLSBoot    = 0xea
	mbrGPT        = 0xee
	mbrESP        = 0xef
	mbrPALO       = 0xf0
	mbrLVMOld     = 0xfe
	mbrRAID       = 0xfd
)

func mbrHiddenType(t byte) bool {
	switch t {
	case 0x11, 0x14, 0x16, 0x17, 0x1b, 0x1c, 0x1e:
		return true
	}
	return false
}

// Flag kinds.
const (
	flagActive = iota // msdos boot: the active bit
	flagType          // sets the partition type while on
	flagHidden
	flagLBA
	flagAttr // GPT attribute bit
)

type flagDef struct {
	kind  int
	mbr   byte // msdos: type while on
	gpt   GUID // gpt: type while on
	attr  uint // gpt: attribute bit
	label string
}

// msdosFlags and gptFlags are the flags parted 3.5 accepts on each label, with
// the partition type (or bit) each one sets, as measured against parted.
var msdosFlags = map[string]flagDef{
	"boot":     {kind: flagActive},
	"hidden":   {kind: flagHidden},
	"lba":      {kind: flagLBA},
	"swap":     {kind: flagType, mbr: mbrLinuxSwap},
	"raid":     {kind: flagType, mbr: mbrRAID},
	"lvm":      {kind: flagType, mbr: mbrLVM},
	"palo":     {kind: flagType, mbr: mbrPALO},
	"prep":     {kind: flagType, mbr: mbrPReP},
	"msftres":  {kind: flagType, mbr: mbrMSRecovery},
	"diag":     {kind: flagType, mbr: mbrDiag},
	"irst":     {kind: flagType, mbr: mbrIRST},
	"esp":      {kind: flagType, mbr: mbrESP},
	"bls_boot": {kind: flagType, mbr: mbrBLSBoot},
}

var gptFlags = map[string]flagDef{
	"boot":            {kind: flagType, gpt: TypeEFISystem},
	"esp":             {kind: flagType, gpt: TypeEFISystem},
	"bios_grub":       {kind: flagType, gpt: TypeBIOSBoot},
	"swap":            {kind: flagType, gpt: TypeLinuxSwap},
	"raid":            {kind: flagType, gpt: TypeLinuxRAID},
	"lvm":             {kind: flagType, gpt: TypeLinuxLVM},
	"hp-service":      {kind: flagType, gpt: TypeHPService},
	"prep":            {kind: flagType, gpt: TypePReP},
	"msftres":         {kind: flagType, gpt: TypeMSReserved},
	"msftdata":        {kind: flagType, gpt: TypeBasicData},
	"atvrecv":         {kind: flagType, gpt: TypeAppleTVRecov},
	"diag":            {kind: flagType, gpt: TypeMSRecovery},
	"irst":            {kind: flagType, gpt: TypeIntelRST},
	"chromeos_kernel": {kind: flagType, gpt: TypeChromeOSKern},
	"bls_boot":        {kind: flagType, gpt: TypeBootLoaderSpc},
	"linux-home":      {kind: flagType, gpt: TypeLinuxHome},
	"hidden":          {kind: flagAttr, attr: 0},
	"legacy_boot":     {kind: flagAttr, attr: 2},
}

func flagNames(m map[string]flagDef) string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// mbrTypeForFS is parted's msdos set_system without type flags: the system id
// for file-system type fs ("" = none/unknown), with the lba and hidden flags.
func mbrTypeForFS(fs string, lba, hidden bool) byte {
	var h byte
	if hidden {
		h = 0x10
	}
	switch {
	case fs == "":
		return mbrLinux
	case fs == "fat16":
		if lba {
			return mbrFAT16LBA | h
		}
		return mbrFAT16 | h
	case fs == "fat32":
		if lba {
			return mbrFAT32LBA | h
		}
		return mbrFAT32 | h
	case fs == "ntfs" || fs == "hpfs":
		return mbrNTFS | h
	case fs == "udf":
		return mbrNTFS
	case fs == "hfs" || fs == "hfs+":
		return mbrHFS
	case fs == "sun-ufs":
		return mbrSunUFS
	case fs == "freebsd-ufs":
		return mbrFreeBSD
	case isSwapFS(fs):
		return mbrLinuxSwap
	}
	return mbrLinux
}

// gptTypeForFS is parted's gpt set_system without type flags.
func gptTypeForFS(fs string) GUID {
	switch {
	case strings.HasPrefix(fs, "fat") || fs == "ntfs" || fs == "udf":
		return TypeBasicData
	case strings.HasPrefix(fs, "hfs"):
		return TypeAppleHFS
	case isSwapFS(fs):
		return TypeLinuxSwap
	case fs == "freebsd-ufs":
		return TypeFreeBSDUFS
	}
	return TypeLinuxData
}

// mbrTypeFlag returns the name of the msdos type flag that type t implies
// ("" for none), as parted derives flags when it reads a table.
func mbrTypeFlag(t byte) string {
	switch t {
	case mbrLVM, mbrLVMOld:
		return "lvm"
	case mbrDellDiag:
		return "diag"
	}
	for name, f := range msdosFlags {
		if f.kind == flagType && f.mbr == t {
			return name
		}
	}
	return ""
}

func gptTypeFlag(t GUID) string {
	if t == TypeEFISystem {
		return "esp"
	}
	for name, f := range gptFlags {
		if f.kind == flagType && f.gpt == t {
			return name
		}
	}
	return ""
}
