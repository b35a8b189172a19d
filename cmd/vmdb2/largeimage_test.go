package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// largeImageSpec: a 100 GB GPT image with one ext4 partition holding a
// few files.
const largeImageSpec = `steps:
  - mkimg: "{{ output }}"
    size: 100G
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - create-dir: /etc
  - copy-dir: /srv/tree
    src: src
  - fstab: /
`

// TestLargeImageStaysSparse: what a build allocates grows with the
// content, not with the image: a 100 GB image with a few files must occupy
// a few MB (mke2fs once wrote the 512 MB journal's zeros), and still be a
// clean filesystem with the files in it. --check-reproducible reads only
// the data of both builds and finds them identical.
func TestLargeImageStaysSparse(t *testing.T) {
	checkTools(t, "mke2fs", "e2fsck", "debugfs")
	dir := writeWorkDir(t, largeImageSpec)
	cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img", "--check-reproducible")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "TMPDIR="+filepath.Join(dir, "tmp"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reproducible: both builds") {
		t.Fatalf("build: %v\n%s", err, out)
	}
	img := filepath.Join(dir, "out.img")
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	used := st.Blocks * 512
	t.Logf("%d bytes apparent, %d KiB allocated", st.Size, used>>10)
	if st.Size != 100<<30 {
		t.Errorf("image size %d, want 100 GiB", st.Size)
	}
	if used > 64<<20 {
		t.Errorf("the 100 GiB image allocates %d MiB: zeros were written instead of left as holes", used>>20)
	}
	const partOffset = 1 << 20
	e2fsck := exec.Command(sbin("e2fsck"), "-fn", fmt.Sprintf("%s?offset=%d", img, partOffset))
	if out, err := e2fsck.CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
	if got := debugfs(t, img, partOffset, "cat /srv/tree/sub/b"); got != "deep\n" {
		t.Errorf("/srv/tree/sub/b = %q", got)
	}
}
