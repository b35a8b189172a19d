package main

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/canary"
)

const hostileUnpackSpec = `steps:
  - mkimg: "{{ output }}"
    size: 64M
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: root
  - mkfs: ext4
    partition: root
  - mount: root
  - unpack-rootfs: root
`

// member is one entry of a hostile tarball.
type member struct {
	typ        byte
	name, link string
	data       string
}

func writeTar(t *testing.T, file string, ms []member) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Typeflag: m.typ, Name: m.name, Linkname: m.link, Mode: 0o644,
			Size: int64(len(m.data)), ModTime: time.Unix(1700000000, 0)}
		if m.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(m.data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUnpackRootfsHostileTarball builds images from tarballs whose links
// lead to a host canary (absolute, relative, a link replaced by a file)
// and whose names or hard links climb out, as root and as an ordinary
// user: the canary is untouched, what goes through a link lands inside the
// image, and names climbing out fail the build with exit code 1.
func TestUnpackRootfsHostileTarball(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs")
	users := []string{"root"}
	if os.Geteuid() == 0 {
		users = append(users, testUser)
	}
	for _, user := range users {
		t.Run(user, func(t *testing.T) { hostileUnpack(t, user != "root") })
	}
}

type hostileCase struct {
	name string
	ms   []member
	ok   bool
}

func hostileCases(host *canary.Host) []hostileCase {
	up := strings.Repeat("../", 20)
	return []hostileCase{
		{"links", []member{
			{typ: tar.TypeDir, name: "./"},
			// The image's own directory of the canary's name, where
			// the links lead inside the image.
			{typ: tar.TypeDir, name: "." + host.Dir + "/"},
			{typ: tar.TypeSymlink, name: "./abs", link: host.Dir},
			{typ: tar.TypeReg, name: "./abs/planted", data: "through an absolute link\n"},
			{typ: tar.TypeSymlink, name: "./rel", link: up + strings.TrimPrefix(host.Dir, "/")},
			{typ: tar.TypeReg, name: "./rel/sub/planted2", data: "through a relative link\n"},
			{typ: tar.TypeSymlink, name: "./secret", link: host.File},
			{typ: tar.TypeReg, name: "./secret", data: "replaces the link\n"},
			{typ: tar.TypeFifo, name: "./fifo"},
		}, true},
		{"dotdot", []member{{typ: tar.TypeReg, name: "../../escape", data: "x"}}, false},
		{"hardlink-out", []member{{typ: tar.TypeLink, name: "./hl", link: host.File}}, false},
		{"hardlink-dotdot", []member{{typ: tar.TypeLink, name: "./hl", link: "../" + filepath.Base(host.Dir) + "/secret"}}, false},
	}
}

func hostileUnpack(t *testing.T, asUser bool) {
	for i, named := range hostileCases(&canary.Host{}) {
		t.Run(named.name, func(t *testing.T) {
			host := canary.New(t)
			c := hostileCases(host)[i]
			dir := writeWorkDir(t, hostileUnpackSpec)
			writeTar(t, filepath.Join(dir, "evil.tar"), c.ms)
			env := []string{"SOURCE_DATE_EPOCH=1700000000", "TMPDIR=" + filepath.Join(dir, "tmp")}
			args := []string{"spec.vmdb", "--output", "out.img", "--rootfs-tarball", "evil.tar"}
			var r result
			if asUser {
				uid, gid := ordinaryUser(t)
				chownTree(t, dir, uid, gid)
				chownTree(t, host.Dir, uid, gid)
				host.Record(t) // as chownTree left it
				r = runAs(t, uid, gid, dir, env, userBinary(t), args...)
			} else {
				r = runVmdb2Env(t, dir, env, args...)
			}
			t.Logf("exit %d\n%s", r.code, r.stderr)
			if c.ok && r.code != 0 {
				t.Fatalf("build failed: %s", r.stderr)
			}
			if !c.ok && r.code != 1 {
				t.Errorf("exit code %d, want 1", r.code)
			}
			host.Check(t)
			noStageLeft(t, filepath.Join(dir, "tmp"))
			if !c.ok {
				return
			}
			img, err := os.ReadFile(filepath.Join(dir, "out.img"))
			if err != nil {
				t.Fatal(err)
			}
			host.NotIn(t, "the image", img)
			for p, want := range map[string]string{
				host.Dir + "/planted":      "through an absolute link\n",
				host.Dir + "/sub/planted2": "through a relative link\n",
				"/secret":                  "replaces the link\n",
			} {
				if got := debugfs(t, filepath.Join(dir, "out.img"), 1<<20, "cat "+p); got != want {
					t.Errorf("%s in the image: %q, want %q", p, got, want)
				}
			}
		})
	}
}

// runVmdb2Env runs the built binary in dir with env added.
func runVmdb2Env(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return runCommand(t, cmd)
}
