package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/vmdb2-go/vmdb2/internal/sparse"
)

// bmapBlockSize is the block size of the block maps written here, as
// bmaptool create's.
const bmapBlockSize = 4096

// blockRange is a run of mapped blocks, first to last inclusive.
type blockRange struct{ first, last int64 }

// dataRanges returns the blocks of f (size bytes) that hold data, as
// package sparse tells, each data extent widened to whole blocks;
// overlapping and adjacent runs are merged.
func dataRanges(f *os.File, size int64, bs int64) ([]blockRange, error) {
	es, err := sparse.Extents(f, 0, size)
	if err != nil {
		return nil, err
	}
	var rs []blockRange
	for _, e := range es {
		r := blockRange{first: e.Off / bs, last: (e.End()+bs-1)/bs - 1}
		if n := len(rs); n > 0 && r.first <= rs[n-1].last+1 {
			rs[n-1].last = max(rs[n-1].last, r.last)
		} else {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// writeBmap writes the block map bmaptool reads (format 2.0): the image's
// size, the block size and count, the mapped blocks with the sha256 of each
// run, and the sha256 of the file itself, computed with its own value
// written as zeros.
func writeBmap(ctx context.Context, j *job) error {
	rs, err := dataRanges(j.image, j.size, bmapBlockSize)
	if err != nil {
		return fmt.Errorf("finding the image's data: %w", err)
	}
	var body bytes.Buffer
	mapped := int64(0)
	for _, r := range rs {
		if err := ctx.Err(); err != nil {
			return err
		}
		sum, err := rangeChecksum(j, r)
		if err != nil {
			return err
		}
		mapped += r.last - r.first + 1
		if r.first == r.last {
			fmt.Fprintf(&body, "        <Range chksum=\"%s\"> %d </Range>\n", sum, r.first)
		} else {
			fmt.Fprintf(&body, "        <Range chksum=\"%s\"> %d-%d </Range>\n", sum, r.first, r.last)
		}
	}
	doc := bmapDocument(j.size, mapped, body.Bytes())
	_, err = j.tmp.Write(doc)
	return err
}

// bmapDocument assembles the XML around the ranges and fills in the
// file's own checksum.
func bmapDocument(size, mapped int64, ranges []byte) []byte {
	blocks := (size + bmapBlockSize - 1) / bmapBlockSize
	zeros := string(bytes.Repeat([]byte("0"), sha256.Size*2))
	percent := 0.0
	if blocks > 0 {
		percent = 100 * float64(mapped) / float64(blocks)
	}
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" ?>\n")
	b.WriteString("<!-- The block map of a disk image, read by bmaptool copy:\n" +
		"     only the blocks listed in BlockMap hold data and need to be written. -->\n")
	b.WriteString("<bmap version=\"2.0\">\n")
	fmt.Fprintf(&b, "    <!-- Image size in bytes: %s -->\n", humanSize(size))
	fmt.Fprintf(&b, "    <ImageSize> %d </ImageSize>\n\n", size)
	fmt.Fprintf(&b, "    <BlockSize> %d </BlockSize>\n\n", bmapBlockSize)
	fmt.Fprintf(&b, "    <BlocksCount> %d </BlocksCount>\n\n", blocks)
	fmt.Fprintf(&b, "    <!-- Mapped: %s or %.1f%% -->\n", humanSize(mapped*bmapBlockSize), percent)
	fmt.Fprintf(&b, "    <MappedBlocksCount> %d </MappedBlocksCount>\n\n", mapped)
	b.WriteString("    <ChecksumType> sha256 </ChecksumType>\n\n")
	b.WriteString("    <!-- The sha256 of this file with this value written as 64 zeros. -->\n")
	b.WriteString("    <BmapFileChecksum> ")
	at := b.Len()
	b.WriteString(zeros + " </BmapFileChecksum>\n\n")
	b.WriteString("    <!-- Runs of mapped blocks (first-last), each with the sha256 of its bytes. -->\n")
	b.WriteString("    <BlockMap>\n")
	b.Write(ranges)
	b.WriteString("    </BlockMap>\n</bmap>\n")
	doc := b.Bytes()
	sum := sha256.Sum256(doc)
	hex.Encode(doc[at:at+sha256.Size*2], sum[:])
	return doc
}

// rangeChecksum is the sha256 of a run's bytes (the last block of the
// image may be short).
func rangeChecksum(j *job, r blockRange) (string, error) {
	start := r.first * bmapBlockSize
	end := min((r.last+1)*bmapBlockSize, j.size)
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(j.image, start, end-start)); err != nil {
		return "", fmt.Errorf("reading the image at byte %d: %w", start, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// humanSize writes a size for the comments (1.5 GiB).
func humanSize(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}
