package export

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// qemuConvert is the write function of a format qemu-img writes. qemu-img
// skips the image's zero blocks (holes and written zeros alike), so the
// result is as sparse as the format allows; without -W it writes in order,
// so a qcow2 from one image is the same bytes every time, and so are vmdk
// and vhdx once their random identifiers are replaced (Options.ID).
func qemuConvert(format string) func(context.Context, *job) error {
	return func(ctx context.Context, j *job) error {
		args := []string{"qemu-img", "convert", "-q", "-f", "raw", "-O", format, j.image.Name(), j.tmp.Name()}
		if _, err := fstool.Run(ctx, j.opts.Run, args, nil); err != nil {
			return err
		}
		if j.opts.ID == nil {
			return nil
		}
		switch format {
		case "vmdk":
			id := j.opts.ID("vmdk-cid")
			return setVMDKCID(j.tmp.Name(), max(1, binary.LittleEndian.Uint32(id[:])))
		case "vhdx":
			return setVHDXIDs(j.tmp.Name(), j.opts.ID)
		}
		return nil
	}
}

// setVMDKCID replaces the content id in a monolithic sparse vmdk's
// embedded descriptor (qemu-img draws it at random) with cid, so that one
// image exports to the same bytes every time. The descriptor is plain text
// at the sectors the sparse header names; the id is 8 hex digits.
func setVMDKCID(path string, cid uint32) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [512]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("reading the vmdk header: %w", err)
	}
	if string(hdr[:4]) != "KDMV" {
		return fmt.Errorf("qemu-img wrote no sparse vmdk header")
	}
	descOff := int64(binary.LittleEndian.Uint64(hdr[28:])) * 512
	descLen := int64(binary.LittleEndian.Uint64(hdr[36:])) * 512
	if descOff == 0 || descLen <= 0 || descLen > 1<<20 {
		return fmt.Errorf("the vmdk has no embedded descriptor")
	}
	desc := make([]byte, descLen)
	if _, err := f.ReadAt(desc, descOff); err != nil {
		return fmt.Errorf("reading the vmdk descriptor: %w", err)
	}
	desc, err = withCID(desc, cid)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(desc, descOff); err != nil {
		return err
	}
	return f.Sync()
}

// withCID returns the descriptor desc with its CID line set to cid, as
// 8 hex digits, and everything after the text's terminating NUL zeroed.
// qemu-img prints its random id without leading zeros (one export in 16
// has 7 digits or fewer), so the line may grow into the padding; and when
// it rewrites the descriptor with a shorter id, the old text's last bytes
// stay after the new NUL.
func withCID(desc []byte, cid uint32) ([]byte, error) {
	text := desc
	if n := bytes.IndexByte(desc, 0); n >= 0 {
		text = desc[:n]
	}
	i := bytes.Index(text, []byte("\nCID="))
	if i < 0 {
		return nil, fmt.Errorf("the vmdk descriptor has no CID line")
	}
	start := i + len("\nCID=")
	end := start
	for end < len(text) && isHex(text[end:end+1]) {
		end++
	}
	if end == start || end-start > 8 || end >= len(text) || text[end] != '\n' {
		return nil, fmt.Errorf("the vmdk descriptor's CID line is not 1 to 8 hex digits")
	}
	out := make([]byte, 0, len(desc))
	out = append(append(append(out, text[:start]...), fmt.Appendf(nil, "%08x", cid)...), text[end:]...)
	if len(out) >= len(desc) {
		return nil, fmt.Errorf("the vmdk descriptor has no room for an 8-digit CID")
	}
	return out[:len(desc)], nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
