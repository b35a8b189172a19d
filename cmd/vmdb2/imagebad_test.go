package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const diskHead = `steps:
  - mkimg: "{{ output }}"
    size: 100M
  - mklabel: msdos
    device: "{{ output }}"
`

// TestImageBadInput: each broken build fails with a clear message, removes
// its stage and writes nothing outside it and the image.
func TestImageBadInput(t *testing.T) {
	checkTools(t, "mke2fs")
	cases := []struct {
		name string
		spec string
		want string
	}{
		{"partition beyond the disk", diskHead + `  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 2GiB
    tag: /
`, "is outside of the device"},
		{"overlapping partitions", diskHead + `  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 50MiB
    tag: a
  - mkpart: primary
    device: "{{ output }}"
    start: 40MiB
    end: 90MiB
    tag: b
`, "overlap"},
		{"tag used twice", diskHead + `  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 50MiB
    tag: a
  - mkpart: primary
    device: "{{ output }}"
    start: 50MiB
    end: 90MiB
    tag: a
`, "Tag already used: a"},
		{"mount of an unknown tag", diskHead + `  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: nosuch
`, "Unknown tag: nosuch"},
		{"content too big", diskHead + `  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 9MiB
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - copy-file: /big
    src: big.bin
`, "MiB"},
		{"image other than --output", diskHead + `  - mkpart: primary
    device: /etc/passwd
    start: 1MiB
    end: 100%
`, "is not the image given with --output"},
		{"file step before any mount", diskHead + `  - create-file: /etc/x
    contents: x
`, "no filesystem is mounted at /"},
		{"mounted without mkfs", diskHead + `  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mount: /
`, "has no filesystem: add a `mkfs` step"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tmp := filepath.Join(dir, "tmp")
			os.Mkdir(tmp, 0o755)
			os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(c.spec), 0o644)
			big := make([]byte, 20<<20)
			for i := range big {
				big[i] = byte(i*7 + i>>9)
			}
			os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
			cmd := exec.Command(binary, "spec.vmdb", "--output", "out.img")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("build succeeded:\n%s", out)
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("exit %v, want 1", err)
			}
			if !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "spec.vmdb:") {
				t.Errorf("output lacks %q and a spec line:\n%s", c.want, out)
			}
			if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine") {
				t.Errorf("stack trace:\n%s", out)
			}
			noStageLeft(t, tmp)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				switch e.Name() {
				case "spec.vmdb", "big.bin", "tmp", "out.img":
				default:
					t.Errorf("unexpected file %s", e.Name())
				}
			}
		})
	}
}
