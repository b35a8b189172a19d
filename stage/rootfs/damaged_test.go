package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// trailerChecksum is where each format keeps a checksum that only the end
// of the stream shows: gzip's CRC-32 of the data, zstd's content checksum,
// xz's stream footer CRC-32.
var trailerChecksum = map[Format]int{Gzip: 8, Zstd: 1, Xz: 12}

// TestDamagedTarball checks that a tarball whose compressed stream is cut
// short or whose end-of-stream checksum is wrong fails to unpack, with
// every decoder, as root (in-process) and as an ordinary user (through the
// namespace: TestAsOrdinaryUser). The checksum case has a complete tar
// archive before the damage, so it fails only because Unpack reads the
// stream to its end.
func TestDamagedTarball(t *testing.T) {
	needTree(t)
	dir := tmpDir(t)
	big := make([]byte, 300<<10)
	rand.New(rand.NewSource(2)).Read(big)
	ref := filepath.Join(dir, "ref.tar")
	writeRef(t, ref, []ent{
		{typ: tar.TypeDir, name: "./", mode: 0o755},
		{typ: tar.TypeDir, name: "./etc/", mode: 0o755},
		{typ: tar.TypeReg, name: "./etc/hostname", mode: 0o644, data: []byte("damaged\n")},
		{typ: tar.TypeReg, name: "./big", mode: 0o644, data: big},
	})
	plain, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range decoders {
		t.Run(d.name, func(t *testing.T) {
			d.use(t)
			good := compressed(t, d.f, plain)
			cut := good[:len(good)/2]
			bad := bytes.Clone(good)
			bad[len(bad)-trailerChecksum[d.f]] ^= 0x55
			for _, c := range []struct {
				name string
				data []byte
				ok   bool
			}{{"intact", good, true}, {"cut short", cut, false}, {"wrong checksum", bad, false}} {
				tb := filepath.Join(dir, "t.tar")
				if err := os.WriteFile(tb, c.data, 0o644); err != nil {
					t.Fatal(err)
				}
				out := mkdir(t, dir, d.name+" "+c.name)
				err := Unpack(context.Background(), tb, out, UnpackOptions{})
				if c.ok && err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
				if testing.Verbose() && err != nil {
					t.Logf("%s: %v", c.name, err)
				}
				if !c.ok && err == nil {
					t.Errorf("%s: unpacked without an error", c.name)
				}
				if !c.ok && err != nil && !strings.Contains(err.Error(), "the tarball is damaged or cut short") {
					t.Errorf("%s: the error does not say the tarball is damaged: %v", c.name, err)
				}
			}
		})
	}
}

// TestDataAfterTheStream checks that data after a tarball's compressed
// stream is accepted or refused as GNU tar (with gzip, xz, zstd and bzip2)
// does, which is what vmdb2 runs: zeros after gzip and bzip2, and stream
// padding (a multiple of 4 zeros) after xz, are fine; other bytes after
// gzip, any after zstd, are not. A gzip file of two members is one stream.
func TestDataAfterTheStream(t *testing.T) {
	needTree(t)
	testreq.NeedTools(t, "tar", "gzip")
	dir := tmpDir(t)
	ref := filepath.Join(dir, "ref.tar")
	writeRef(t, ref, []ent{
		{typ: tar.TypeDir, name: "./", mode: 0o755},
		{typ: tar.TypeReg, name: "./hostname", mode: 0o644, data: []byte("padded\n")},
	})
	plain, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1024)
	half := len(plain) / 2
	bz2 := decoder{"bzip2 program", Bzip2, &hostBzip2}
	for i, c := range []struct {
		d     decoder
		after []byte
	}{
		{decoders[0], zeros}, {decoders[0], []byte("garbage\n")}, {decoders[0], nil},
		{decoders[1], zeros[:4]}, {decoders[1], zeros[:5]}, {decoders[2], zeros[:4]}, {decoders[2], zeros[:5]},
		{decoders[3], zeros[:4]}, {decoders[4], zeros[:4]},
		{bz2, zeros}, {bz2, []byte("garbage\n")},
	} {
		what := fmt.Sprintf("%d zeros", len(c.after))
		if bytes.ContainsFunc(c.after, func(r rune) bool { return r != 0 }) {
			what = fmt.Sprintf("%q", c.after)
		}
		name := c.d.name + ", then " + what
		if c.after == nil {
			name = "gzip, two members"
		}
		t.Run(name, func(t *testing.T) {
			c.d.use(t)
			data := append(compressed(t, c.d.f, plain), c.after...)
			if c.after == nil {
				data = append(compressed(t, Gzip, plain[:half]), compressed(t, Gzip, plain[half:])...)
			}
			tb := filepath.Join(dir, "t.tar")
			if err := os.WriteFile(tb, data, 0o644); err != nil {
				t.Fatal(err)
			}
			gnu := exec.Command("tar", "-C", mkdir(t, dir, fmt.Sprint("gnu-", i)), "-xf", tb).Run() == nil
			got := Unpack(context.Background(), tb, mkdir(t, dir, fmt.Sprint("ours-", i)), UnpackOptions{})
			if (got == nil) != gnu {
				t.Errorf("Unpack: %v; GNU tar accepts it: %v", got, gnu)
			}
		})
	}
}
