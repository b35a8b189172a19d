// Package luks makes LUKS2 containers offline, without device-mapper: the
// header and key slot come from the host's `cryptsetup luksFormat` run on a
// plain scratch file, and the payload (a filesystem or LVM PV built as a
// plain file) is encrypted into the container's data area here, with
// aes-xts-plain64 as dm-crypt would write it.
//
// The volume key and the salts are random on every build: a key derived
// from the build's seed would be public. Only the header's UUID is the
// caller's.
package luks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Layout is what a formatted header says about the data area.
type Layout struct {
	// DataOffset is where the ciphertext starts in the container, in bytes.
	DataOffset int64
	// SectorSize is the encryption sector size in bytes.
	SectorSize int
	// Cipher is the data segment's cipher, e.g. "aes-xts-plain64".
	Cipher string
	// UUID is the header's UUID.
	UUID string
}

const (
	binaryHeaderSize = 4096
	luks2Magic       = "LUKS\xba\xbe"
)

// ReadLayout reads the LUKS2 header at the start of r: its binary header
// gives the JSON area's size, the JSON area the data segment.
func ReadLayout(r io.ReaderAt) (Layout, error) {
	var bin [binaryHeaderSize]byte
	if _, err := r.ReadAt(bin[:], 0); err != nil {
		return Layout{}, fmt.Errorf("reading the LUKS2 header: %w", err)
	}
	if string(bin[:6]) != luks2Magic || binary.BigEndian.Uint16(bin[6:8]) != 2 {
		return Layout{}, errors.New("not a LUKS2 header")
	}
	hdrSize := binary.BigEndian.Uint64(bin[8:16])
	if hdrSize <= binaryHeaderSize || hdrSize > 4<<20 {
		return Layout{}, fmt.Errorf("LUKS2 header size %d is out of range", hdrSize)
	}
	area := make([]byte, hdrSize-binaryHeaderSize)
	if _, err := r.ReadAt(area, binaryHeaderSize); err != nil {
		return Layout{}, fmt.Errorf("reading the LUKS2 metadata: %w", err)
	}
	if i := bytes.IndexByte(area, 0); i >= 0 {
		area = area[:i]
	}
	var meta struct {
		Segments map[string]struct {
			Type       string `json:"type"`
			Offset     string `json:"offset"`
			Encryption string `json:"encryption"`
			SectorSize int    `json:"sector_size"`
			Integrity  any    `json:"integrity"`
		} `json:"segments"`
	}
	if err := json.Unmarshal(area, &meta); err != nil {
		return Layout{}, fmt.Errorf("reading the LUKS2 metadata: %w", err)
	}
	seg, ok := meta.Segments["0"]
	if !ok || len(meta.Segments) != 1 || seg.Type != "crypt" {
		return Layout{}, errors.New("the LUKS2 header does not have one crypt segment")
	}
	if seg.Integrity != nil {
		return Layout{}, errors.New("the LUKS2 header uses integrity protection, which needs dm-integrity to write")
	}
	off, err := strconv.ParseInt(seg.Offset, 10, 64)
	if err != nil || off <= 0 {
		return Layout{}, fmt.Errorf("the LUKS2 data offset %q is not usable", seg.Offset)
	}
	if seg.SectorSize < 512 || seg.SectorSize > 4096 || seg.SectorSize&(seg.SectorSize-1) != 0 {
		return Layout{}, fmt.Errorf("the LUKS2 sector size %d is not usable", seg.SectorSize)
	}
	uuid := string(bytes.TrimRight(bin[168:208], "\x00"))
	return Layout{DataOffset: off, SectorSize: seg.SectorSize, Cipher: seg.Encryption, UUID: uuid}, nil
}

// readLayoutFile is ReadLayout on a file.
func readLayoutFile(path string) (Layout, error) {
	f, err := os.Open(path)
	if err != nil {
		return Layout{}, err
	}
	defer f.Close()
	return ReadLayout(f)
}
