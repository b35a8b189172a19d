package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzDataLimit is the most file data FuzzUnpack unpacks from one stream
// (a sparse member can declare terabytes in a few bytes).
const fuzzDataLimit = 1 << 20

// FuzzUnpack unpacks fuzzed tar streams (a --rootfs-tarball is untrusted
// input) into a directory deep inside a temporary one: it must not panic,
// must not write anything outside that directory (checked around it, and in
// a canary directory at a fixed absolute path the seeds aim at), and uses a
// bounded buffer whatever the stream. Device nodes are recorded, not
// created; with fallback set, paths are walked without openat2.
func FuzzUnpack(f *testing.F) {
	canary := filepath.Join(os.TempDir(), "vmdb2-fuzz-unpack-canary")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "keep"), []byte("keep"), 0o644); err != nil {
		f.Fatal(err)
	}
	for _, seed := range fuzzSeeds(canary) {
		f.Add(fuzzTar(f, seed), false)
		f.Add(fuzzTar(f, seed), true)
	}
	f.Fuzz(func(t *testing.T, stream []byte, fallback bool) {
		if !fuzzBounded(stream) {
			return
		}
		outer := t.TempDir()
		root := filepath.Join(outer, "a", "b", "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(outer, "a", "sentinel"), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		if fallback {
			was := noOpenat2.Swap(true)
			defer noOpenat2.Store(was)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = extractAlwaysRecording(ctx, bytes.NewReader(stream), root)
		makeRemovable(t, root)
		checkConfined(t, outer, root)
		ents, _ := os.ReadDir(canary)
		if b, _ := os.ReadFile(filepath.Join(canary, "keep")); len(ents) != 1 || string(b) != "keep" {
			t.Fatalf("the canary directory %s was written to: %v (remove it before fuzzing again)", canary, ents)
		}
	})
}

// fuzzBounded reads the stream's headers: false when its members declare
// more than fuzzDataLimit bytes of data.
func fuzzBounded(stream []byte) bool {
	tr := tar.NewReader(bytes.NewReader(stream))
	var total int64
	for {
		h, err := tr.Next()
		if err != nil {
			return err == io.EOF || total <= fuzzDataLimit
		}
		if total += max(h.Size, 0); total > fuzzDataLimit {
			return false
		}
	}
}

// makeRemovable gives every directory under root owner rwx (unpacked modes
// may be 000) so that the walk and the cleanup can enter it.
func makeRemovable(t *testing.T, root string) {
	_ = os.Chmod(root, 0o700)
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() {
			makeRemovable(t, filepath.Join(root, e.Name()))
		}
	}
}

// checkConfined fails when anything is under outer but root, its parents
// and the sentinel (unchanged).
func checkConfined(t *testing.T, outer, root string) {
	t.Helper()
	allowed := map[string]bool{outer: true, filepath.Join(outer, "a"): true, filepath.Join(outer, "a", "b"): true, filepath.Join(outer, "a", "sentinel"): true}
	err := filepath.WalkDir(outer, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return filepath.SkipDir
		}
		if !allowed[p] {
			t.Fatalf("unpacking wrote %s, outside %s", p, root)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(outer, "a", "sentinel")); err != nil || string(b) != "keep" {
		t.Fatalf("the file beside the target was changed: %q %v", b, err)
	}
}

// fuzzEntry is one member of a seed stream.
type fuzzEntry struct {
	typ        byte
	name, link string
	data       string
	pax        map[string]string
}

// fuzzSeeds are streams with every member type and the escapes of
// TestHostile, aimed at canary.
func fuzzSeeds(canary string) [][]fuzzEntry {
	up := strings.Repeat("../", 12)
	return [][]fuzzEntry{
		{{typ: tar.TypeDir, name: "./"}, {typ: tar.TypeDir, name: "./etc/"}, {typ: tar.TypeReg, name: "./etc/hosts", data: "127.0.0.1 localhost\n"},
			{typ: tar.TypeSymlink, name: "./etc/mtab", link: "/proc/self/mounts"}, {typ: tar.TypeLink, name: "./etc/hosts2", link: "./etc/hosts"},
			{typ: tar.TypeFifo, name: "./fifo"}, {typ: tar.TypeChar, name: "./null"}, {typ: tar.TypeBlock, name: "./sda"},
			{typ: tar.TypeReg, name: "./x", data: "x", pax: map[string]string{"SCHILY.xattr.user.a": "1", "LIBARCHIVE.xattr.user.b": "Mg"}}},
		{{typ: tar.TypeReg, name: "../escape", data: "x"}},
		{{typ: tar.TypeSymlink, name: "evil", link: canary}, {typ: tar.TypeReg, name: "evil/file", data: "x"}},
		{{typ: tar.TypeSymlink, name: "evil", link: up + canary}, {typ: tar.TypeDir, name: "evil/sub/"}, {typ: tar.TypeReg, name: "evil/sub/f", data: "x"}},
		{{typ: tar.TypeSymlink, name: "evil", link: canary + "/keep"}, {typ: tar.TypeReg, name: "evil", data: "overwritten"}},
		{{typ: tar.TypeLink, name: "hl", link: up + canary + "/keep"}, {typ: tar.TypeLink, name: "hl2", link: canary + "/keep"}},
		{{typ: tar.TypeSymlink, name: "evil", link: "/"}, {typ: tar.TypeReg, name: "evil" + canary + "/keep", data: "overwritten"}},
		{{typ: tar.TypeDir, name: "a/"}, {typ: tar.TypeSymlink, name: "a/up", link: ".."}, {typ: tar.TypeSymlink, name: "a/up2", link: "up/.."},
			{typ: tar.TypeReg, name: "a/up2/up/escape", data: "x"}, {typ: tar.TypeLink, name: "a/hl", link: "a/up2/up/escape"}},
		{{typ: tar.TypeDir, name: "d/"}, {typ: tar.TypeReg, name: "d", data: "file over a directory"}, {typ: tar.TypeDir, name: "d/"}},
		{{typ: tar.TypeReg, name: strings.Repeat("long/", 40) + "name", data: "x"}},
	}
}

func fuzzTar(f *testing.F, es []fuzzEntry) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o755, Size: int64(len(e.data)),
			ModTime: time.Unix(1700000000, 0), Devmajor: 1, Devminor: 3, PAXRecords: e.pax}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			f.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}
