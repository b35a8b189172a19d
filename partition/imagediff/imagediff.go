// Package imagediff compares two disk images and says where they first
// differ: the byte offset, the partition holding it and, for ext
// filesystems, the file it belongs to (found with debugfs). It backs
// vmdb2's --check-reproducible.
package imagediff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"

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
	const chunk = 1 << 20
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	var off int64
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		n := min(na, nb)
		for _, r := range skip {
			lo, hi := max(r.Offset-off, 0), min(r.Offset+r.Size-off, int64(n))
			if lo < hi {
				copy(bb[lo:hi], ba[lo:hi])
			}
		}
		if i := firstDiff(ba[:n], bb[:n]); i >= 0 {
			return locate(a, off+int64(i)), nil
		}
		if na != nb {
			return locate(a, off+int64(n)), nil
		}
		off += int64(n)
		aDone := errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)
		bDone := errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)
		if ea != nil && !aDone {
			return nil, ea
		}
		if eb != nil && !bDone {
			return nil, eb
		}
		if aDone || bDone {
			return nil, nil
		}
	}
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
