package steps

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// IDs derives every identifier a build writes (filesystem UUIDs, GPT GUIDs,
// the MBR disk signature, FAT volume ids, ext4 hash seeds) from the build's
// seed, so that identical inputs give identical images.
//
// Derivation: SHA-256 over "vmdb2-id", the seed and a purpose string naming
// what the identifier is for (e.g. "fs-uuid:/" for the filesystem of tag
// "/"), separated by NUL bytes; the first 16 bytes are the identifier, with
// the RFC 4122 version 4 and variant bits set where it is a UUID.
type IDs struct {
	seed string
}

// NewIDs returns the identifier source of a seed.
func NewIDs(seed string) IDs { return IDs{seed: seed} }

func (ids IDs) sum(purpose string) [32]byte {
	return sha256.Sum256([]byte("vmdb2-id\x00" + ids.seed + "\x00" + purpose))
}

// UUID returns a random-looking version 4 UUID for purpose.
func (ids IDs) UUID(purpose string) [16]byte {
	s := ids.sum(purpose)
	var u [16]byte
	copy(u[:], s[:16])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Uint32 returns a non-zero 32-bit number for purpose.
func (ids IDs) Uint32(purpose string) uint32 {
	s := ids.sum(purpose)
	n := binary.LittleEndian.Uint32(s[:4])
	if n == 0 {
		n = 1
	}
	return n
}

// FormatUUID writes a UUID the usual way (8-4-4-4-12 lower-case hex).
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// DefaultSeed is the seed of a build without --seed, so that rebuilding a
// spec gives the same image wherever it is built. It is the SHA-256 of,
// for each step in order, the step's kind and every key as written with
// its value rendered from the templates, where `output`, `image` and
// `rootfs_tarball` given on the command line render as fixed placeholders
// (not given, they are None as usual); `arch` and the --variable values
// are what they are. So the seed does not depend on the --output, --image
// or --rootfs-tarball paths, the current directory (relative copy-file
// sources are hashed as written), the stage's location, the spec file's
// name or its comments and layout; a --variable that carries a path does
// make it part of the seed.
func (p *Plan) DefaultSeed() string { return p.seed }

// sanitize makes a tag usable in a purpose string unambiguously.
func sanitize(s string) string { return strings.ReplaceAll(s, "\x00", "") }
