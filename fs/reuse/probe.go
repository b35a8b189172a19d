// Package reuse reads a filesystem that is already in an image, for the
// tags vmdb2 0.28's `kpartx: tags` and `lvscan` make of an existing image:
// Probe says what it is and how it was made (type, UUID, label, features,
// geometry), and Import copies its files into a stage directory, from
// which the filesystem is later built again like one that mkfs made.
//
// The image's content is hostile. The listing (debugfs, which only reads
// the image) is checked before anything is written: a name holding "/" or
// listed twice, "." or ".." anywhere but as a directory's own links, a
// directory linked twice, or more file data than the stage has room for
// stops the import. The files are then written by debugfs rdump (ext) or
// mcopy (vfat) inside the build's user namespace, confined by Landlock to
// the target directory (package stage/landlock), and owners, modes and
// extended attributes are set afterwards through the stage's confined
// operations (stage.Root), which never follow a symbolic link.
//
// What an import loses: hard links become separate copies, FIFOs and
// sockets are dropped (Result.Lost lists them), symbolic links get the
// import's time; device nodes are not created in the directory but
// returned (Result.Devices) for the ext builder to add.
package reuse

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// Info is what Probe found.
type Info struct {
	Type     string // ext2, ext3, ext4 or vfat
	Label    string
	UUID     [16]byte // ext
	HashSeed [16]byte // ext
	VolumeID uint32   // vfat
	// Options are the mkfs options (as a spec's `options` gives them) that
	// build the filesystem again with the same features and geometry.
	Options string
}

// Source is where a filesystem is: a byte range of an image file.
type Source struct {
	Image        string
	Offset, Size int64
}

// target is how e2fsprogs names the region.
func (s Source) target() string { return fmt.Sprintf("%s?offset=%d", s.Image, s.Offset) }

// ErrUnknown says that the region holds no filesystem this package reads.
var ErrUnknown = errors.New("no ext2/3/4 or vfat filesystem found (other types cannot be reused without mkfs; add a `mkfs` step to make a new one)")

// Probe reads the filesystem at src: its type (Sniff), and the rest from
// the superblock or boot sector and, for ext, `dumpe2fs -h` (run with run).
func Probe(ctx context.Context, run fstool.Runner, src Source) (Info, error) {
	fsType, head, err := sniff(src)
	if err != nil {
		return Info{}, err
	}
	if fsType == "vfat" {
		return probeFAT(head)
	}
	info, err := probeExt(ctx, run, src, head[1024:])
	info.Type = fsType
	return info, err
}

// Sniff returns the type of the filesystem at src (ext2, ext3, ext4 or
// vfat), from the superblock's feature bits as blkid reads them, or the
// boot sector; ErrUnknown if neither is there.
func Sniff(src Source) (string, error) {
	t, _, err := sniff(src)
	return t, err
}

func sniff(src Source) (string, []byte, error) {
	f, err := os.Open(src.Image)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	head := make([]byte, 2048)
	if src.Size < int64(len(head)) {
		return "", nil, ErrUnknown
	}
	if _, err := f.ReadAt(head, src.Offset); err != nil && !errors.Is(err, io.EOF) {
		return "", nil, fmt.Errorf("reading the filesystem's first sectors: %w", err)
	}
	le := binary.LittleEndian
	sb := head[1024:]
	switch {
	case le.Uint16(sb[56:]) == 0xEF53:
		compat, incompat, roCompat := le.Uint32(sb[92:]), le.Uint32(sb[96:]), le.Uint32(sb[100:])
		switch {
		case incompat&ext4Incompat != 0 || roCompat&ext4ROCompat != 0:
			return "ext4", head, nil
		case compat&hasJournal != 0:
			return "ext3", head, nil
		}
		return "ext2", head, nil
	case head[510] == 0x55 && head[511] == 0xAA && (bytes.HasPrefix(head[0x36:], []byte("FAT1")) || bytes.HasPrefix(head[0x52:], []byte("FAT32"))):
		return "vfat", head, nil
	}
	return "", nil, ErrUnknown
}

// Superblock feature bits that make blkid call a filesystem ext4 (extents,
// 64bit, flex_bg, inline_data; huge_file, gdt_csum, dir_nlink,
// extra_isize, metadata_csum) or ext3 (has_journal).
const (
	hasJournal   = 0x4
	ext4Incompat = 0x40 | 0x80 | 0x200 | 0x8000
	ext4ROCompat = 0x8 | 0x10 | 0x20 | 0x40 | 0x400
)

// transientFeatures are ext features that record a state, not a choice
// made at mkfs time.
var transientFeatures = map[string]bool{"needs_recovery": true, "orphan_present": true}

// probeExt reads the identity from the superblock sb (s_uuid, s_volume_name,
// s_hash_seed) and the features and sizes from dumpe2fs.
func probeExt(ctx context.Context, run fstool.Runner, src Source, sb []byte) (Info, error) {
	out, err := fstool.Run(ctx, run, []string{"dumpe2fs", "-h", src.target()}, nil)
	if err != nil {
		return Info{}, fmt.Errorf("reading the ext superblock: %w", err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var info Info
	copy(info.UUID[:], sb[104:120])
	copy(info.HashSeed[:], sb[236:252])
	info.Label, _, _ = strings.Cut(string(sb[120:136]), "\x00")
	if info.UUID == ([16]byte{}) {
		return Info{}, errors.New("the ext filesystem has no UUID")
	}
	var features []string
	for _, f := range strings.Fields(fields["Filesystem features"]) {
		if !transientFeatures[f] {
			features = append(features, f)
		}
	}
	opts := []string{"-O", "none," + strings.Join(features, ",")}
	for _, o := range []struct{ flag, field string }{{"-b", "Block size"}, {"-I", "Inode size"}, {"-N", "Inode count"}} {
		if v := fields[o.field]; v != "" {
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return Info{}, fmt.Errorf("dumpe2fs: %s %q is not a number", o.field, v)
			}
			opts = append(opts, o.flag, v)
		}
	}
	info.Options = strings.Join(opts, " ")
	return info, nil
}

// probeFAT reads a FAT boot sector: volume id, label, FAT size and cluster
// size.
func probeFAT(bs []byte) (Info, error) {
	info := Info{Type: "vfat"}
	bits, idAt := 16, 0x27
	if binary.LittleEndian.Uint16(bs[22:]) == 0 { // FAT16's FAT size field unused: FAT32
		bits, idAt = 32, 0x43
	} else if bytes.HasPrefix(bs[0x36:], []byte("FAT12")) {
		bits = 12
	}
	info.VolumeID = binary.LittleEndian.Uint32(bs[idAt:])
	if l := strings.TrimRight(string(bs[idAt+4:idAt+15]), " "); l != "NO NAME" {
		info.Label = l
	}
	spc := int(bs[13])
	if spc == 0 || spc&(spc-1) != 0 {
		return Info{}, fmt.Errorf("FAT boot sector: %d sectors per cluster is not a power of two", spc)
	}
	info.Options = fmt.Sprintf("-F %d -s %d", bits, spc)
	return info, nil
}
