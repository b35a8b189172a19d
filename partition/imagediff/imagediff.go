// Package imagediff compares two disk images and says where they first
// differ: the byte offset, the partition holding it and, for ext
// filesystems, the file it belongs to (found with debugfs). It backs
// vmdb2's --check-reproducible.
package imagediff

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/internal/sparse"
	"github.com/vmdb2-go/vmdb2/partition"
)

// Difference describes the first differing byte of two images.
type Difference struct {
	Offset    int64
	Partition int    // 0 when outside any partition (tables, boot code, gaps)
	PartStart int64  // byte offset of that partition
	Where     string // what is there, as far as it can be told
}

func (d *Difference) String() string {
	s := fmt.Sprintf("first difference at byte %d", d.Offset)
	if d.Partition > 0 {
		s += fmt.Sprintf(" (partition %d, %d bytes in)", d.Partition, d.Offset-d.PartStart)
	}
	if d.Where != "" {
		s += ": " + d.Where
	}
	return s
}

// Compare returns nil when the two files are identical, else where they
// first differ. Files of different sizes differ at the shorter one's end.
func Compare(a, b string) (*Difference, error) { return CompareSkipping(a, b, nil) }

// Range is a byte range of an image: [Offset, Offset+Size).
type Range struct{ Offset, Size int64 }

// CompareSkipping is Compare with the bytes in skip taken as equal (the
// ciphertext of encrypted areas, compared by their cleartext instead).
// Only the data extents of either file are read: a hole in both reads as
// zeros in both, so a sparse 100 GB image costs what its data costs.
func CompareSkipping(a, b string, skip []Range) (*Difference, error) {
	fa, err := os.Open(a)
	if err != nil {
		return nil, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return nil, err
	}
	defer fb.Close()
	sa, err := fileSize(fa)
	if err != nil {
		return nil, err
	}
	sb, err := fileSize(fb)
	if err != nil {
		return nil, err
	}
	n := min(sa, sb)
	ea, err := sparse.Extents(fa, 0, n)
	if err != nil {
		return nil, err
	}
	eb, err := sparse.Extents(fb, 0, n)
	if err != nil {
		return nil, err
	}
	for _, e := range sparse.Union(ea, eb) {
		at, err := compareExtent(fa, fb, e, skip)
		if err != nil {
			return nil, err
		}
		if at >= 0 {
			return locate(a, at), nil
		}
	}
	if sa != sb {
		return locate(a, n), nil
	}
	return nil, nil
}

// fileSize is the size of a regular file or a block device.
func fileSize(f *os.File) (int64, error) {
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("finding the size of %s: %w", f.Name(), err)
	}
	return n, nil
}

// compareExtent returns the first offset in e where fa and fb differ
// outside skip, or -1.
func compareExtent(fa, fb *os.File, e sparse.Extent, skip []Range) (int64, error) {
	const chunk = 1 << 20
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	for off := e.Off; off < e.End(); off += chunk {
		n := min(chunk, e.End()-off)
		if _, err := fa.ReadAt(ba[:n], off); err != nil {
			return 0, fmt.Errorf("reading %s: %w", fa.Name(), err)
		}
		if _, err := fb.ReadAt(bb[:n], off); err != nil {
			return 0, fmt.Errorf("reading %s: %w", fb.Name(), err)
		}
		for _, r := range skip {
			lo, hi := max(r.Offset-off, 0), min(r.Offset+r.Size-off, n)
			if lo < hi {
				copy(bb[lo:hi], ba[lo:hi])
			}
		}
		if i := firstDiff(ba[:n], bb[:n]); i >= 0 {
			return off + int64(i), nil
		}
	}
	return -1, nil
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

var inodeTableRE = regexp.MustCompile(`Group\s+(\d+): block bitmap at \d+, inode bitmap at \d+, inode table at (\d+)`)

// locate says what lies at offset of image: which partition and, for an
// ext filesystem, which inode or file.
func locate(image string, offset int64) *Difference {
	d := &Difference{Offset: offset}
	disk, err := partition.Open(image)
	if err != nil {
		return d
	}
	defer disk.Close()
	if offset < 512 {
		d.Where = "the MBR (boot code or partition table)"
	} else if disk.Label() == "gpt" && offset < 34*512 {
		d.Where = "the GPT header or entries"
	}
	for _, p := range disk.Partitions() {
		if offset >= p.Offset && offset < p.Offset+p.Size {
			d.Partition, d.PartStart = p.Number, p.Offset
			d.Where = describeInExt(image, p.Offset, offset-p.Offset)
			return d
		}
	}
	if d.Where == "" {
		d.Where = "outside every partition (e.g. GRUB's core.img in the MBR gap)"
	}
	return d
}

// describeInExt names the file or metadata at rel bytes into the ext
// filesystem at partOffset, or "" when it is not ext.
func describeInExt(image string, partOffset, rel int64) string {
	target := fmt.Sprintf("%s?offset=%d", image, partOffset)
	debugfs := func(req string) string {
		out, _ := exec.Command(sbin("debugfs"), "-R", req, target).Output()
		return string(out)
	}
	stats := debugfs("stats")
	bs := regexp.MustCompile(`Block size:\s+(\d+)`).FindStringSubmatch(stats)
	is := regexp.MustCompile(`Inode size:\s+(\d+)`).FindStringSubmatch(stats)
	ipg := regexp.MustCompile(`Inodes per group:\s+(\d+)`).FindStringSubmatch(stats)
	if bs == nil || is == nil || ipg == nil {
		return ""
	}
	blockSize, _ := strconv.ParseInt(bs[1], 10, 64)
	inodeSize, _ := strconv.ParseInt(is[1], 10, 64)
	inodesPerGroup, _ := strconv.ParseInt(ipg[1], 10, 64)
	block := rel / blockSize
	if block == 0 {
		return "the ext superblock"
	}
	// In an inode table?
	tableBlocks := inodesPerGroup * inodeSize / blockSize
	for _, m := range inodeTableRE.FindAllStringSubmatch(stats, -1) {
		group, _ := strconv.ParseInt(m[1], 10, 64)
		start, _ := strconv.ParseInt(m[2], 10, 64)
		if block >= start && block < start+tableBlocks {
			ino := group*inodesPerGroup + (rel-start*blockSize)/inodeSize + 1
			return fmt.Sprintf("inode %d (%s)", ino, inodePath(debugfs, ino))
		}
	}
	ic := debugfs(fmt.Sprintf("icheck %d", block))
	f := strings.Fields(lastLine(ic))
	if len(f) == 2 && f[1] != "<block" {
		if ino, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			return fmt.Sprintf("data of inode %d (%s)", ino, inodePath(debugfs, ino))
		}
	}
	return fmt.Sprintf("ext metadata block %d", block)
}

func inodePath(debugfs func(string) string, ino int64) string {
	f := strings.Fields(lastLine(debugfs(fmt.Sprintf("ncheck %d", ino))))
	if len(f) >= 2 {
		return path.Clean(f[1])
	}
	return "no path"
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func sbin(tool string) string {
	if p, err := exec.LookPath(tool); err == nil {
		return p
	}
	return "/usr/sbin/" + tool
}
