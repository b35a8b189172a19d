package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// badSpecCase is a spec that must be refused before anything is written.
type badSpecCase struct {
	name string
	spec string
	want []string // substrings of stderr, each normally "spec.vmdb:LINE: ..."
	// args replace "--output out.img"; files are created beside the spec.
	args  []string
	files map[string]string
}

// Parts of the specs below, with the lines they take.
const (
	// lines 1-5: an msdos image
	badHead = "steps:\n  - mkimg: \"{{ output }}\"\n    size: 100M\n  - mklabel: msdos\n    device: \"{{ output }}\"\n"
	// lines 6-10: partition 1, tag /
	badRootPart = "  - mkpart: primary\n    device: \"{{ output }}\"\n    start: 1MiB\n    end: 100%\n    tag: /\n"
	// lines 11-13: ext4 on / and its mount
	badRootFS = "  - mkfs: ext4\n    partition: /\n  - mount: /\n"
	// lines 1-13; the next step starts at line 14
	badRooted = badHead + badRootPart + badRootFS
)

// badPart is a mkpart step of four lines, start to end, tagged when tag is
// not empty (a fifth line).
func badPart(start, end, tag string) string {
	s := "  - mkpart: primary\n    device: \"{{ output }}\"\n    start: " + start + "\n    end: " + end + "\n"
	if tag != "" {
		s += "    tag: " + tag + "\n"
	}
	return s
}

// badSpecs are the specs TestBadSpecs refuses: every one before its first
// step, the plan-time ones and those the build can know from the host.
func badSpecs() []badSpecCase {
	many := "steps:\n  - mkimg: \"{{ output }}\"\n    size: 200M\n  - mklabel: gpt\n    device: \"{{ output }}\"\n"
	for i := 1; i <= 129; i++ {
		many += badPart(itoa(i)+"MiB", itoa(i+1)+"MiB", "")
	}
	five := badHead
	for i := 1; i <= 5; i++ {
		five += badPart(itoa(i)+"MiB", itoa(i+1)+"MiB", "")
	}
	return []badSpecCase{
		// Spec errors.
		{name: "yaml syntax", spec: "steps:\n- echo: a\n\tteardown: b\n", want: []string{"spec.vmdb:3: YAML syntax error"}},
		{name: "bad indentation", spec: "steps:\n- echo: a\n   x: y\n", want: []string{"spec.vmdb:3: YAML syntax error"}},
		{name: "empty file", spec: "", want: []string{"spec.vmdb:1: spec is empty"}},
		{name: "no steps key", spec: "stepz:\n- echo: a\n", want: []string{"spec.vmdb:1: the spec has no `steps:` key"}},
		{name: "steps not a list", spec: "steps: hello\n", want: []string{"spec.vmdb:1: `steps:` must be a list"}},
		{name: "step not a mapping", spec: "steps:\n- echo: a\n- just a string\n", want: []string{"spec.vmdb:3: each step must be a mapping"}},
		{name: "two documents", spec: "steps: []\n---\nsteps: []\n", want: []string{"spec.vmdb:2: a spec file must hold one YAML document"}},
		{name: "unknown step kind", spec: "steps:\n- echo: a\n- mkimage: x.img\n  size: 1G\n", want: []string{"spec.vmdb:3: no step kind has the keys `mkimage`, `size`; did you mean `mkimg`?"}},
		{name: "missing required key", spec: "steps:\n- mkimg: x.img\n", want: []string{"spec.vmdb:2: step is incomplete: a mkimg step needs `size`"}},
		{name: "error without teardown", spec: "steps:\n- error: x\n", want: []string{"spec.vmdb:2: step is incomplete: a error step needs `teardown`"}},
		{name: "string key given an integer", spec: "steps:\n- mkimg: x.img\n  size: 1024\n", want: []string{"spec.vmdb:3: mkimg: key `size` must be a string, but YAML read 1024 as a integer; quote it"}},
		{name: "bool key given an integer", spec: "steps:\n- apt: install\n  tag: /\n  recommends: 0\n", want: []string{"spec.vmdb:4: apt: key `recommends` must be a boolean"}},
		{name: "list key given a string", spec: "steps:\n- apt: install\n  packages: vim\n", want: []string{"spec.vmdb:3: apt: key `packages` must be a list"}},
		{name: "null value", spec: "steps:\n- echo: a\n  teardown:\n", want: []string{"spec.vmdb:3: echo: key `teardown` has no value"}},
		{name: "float value", spec: "steps:\n- mkimg: x.img\n  size: 1.5\n", want: []string{"spec.vmdb:3: mkimg: key `size` is the number 1.5"}},
		{name: "date value", spec: "steps:\n- echo: 2020-01-01\n", want: []string{"spec.vmdb:2: echo: key `echo` is read as a date"}},
		{name: "unless not a name", spec: "steps:\n- echo: a\n  unless: 5\n", want: []string{"spec.vmdb:3: `unless` must be a flag name"}},
		{name: "template syntax", spec: "steps:\n- echo: a\n- echo: \"{{ output \"\n", want: []string{"spec.vmdb:3: template error"}},
		{name: "template comment in shell", spec: "steps:\n- echo: a\n- chroot: /\n  shell: |\n    echo ok\n    echo ${#list[@]}\n", want: []string{"spec.vmdb:6: template error", "{% raw %}"}},
		{name: "apt value", spec: "steps:\n- apt: remove\n  tag: /\n", want: []string{"spec.vmdb:2: apt: the value must be `install`"}},
		{name: "grub flavour", spec: "steps:\n- grub: coreboot\n  tag: /\n", want: []string{"spec.vmdb:2: grub: unknown GRUB flavour \"coreboot\""}},
		{name: "grub uefi without esp", spec: "steps:\n- grub: uefi\n  tag: /\n", want: []string{"spec.vmdb:2: grub: uefi needs the tag of the EFI system partition"}},
		{name: "grub ieee1275 without prep", spec: "steps:\n- grub: ieee1275\n  tag: /\n", want: []string{"spec.vmdb:2: grub: ieee1275 needs the tag of the PReP boot partition in `prep`"}},
		{name: "grub kernel-params not a list", spec: "steps:\n- grub: bios\n  tag: /\n  kernel-params: quiet\n", want: []string{"spec.vmdb:4: grub: key `kernel-params` must be a list"}},
		{name: "grub kernel-params number", spec: "steps:\n- grub: bios\n  tag: /\n  kernel-params:\n  - rw\n  - 3\n", want: []string{"spec.vmdb:6: grub: kernel-params item 3 is a integer; quote it"}},
		{name: "grub kernel-params quote", spec: "steps:\n- grub: bios\n  tag: /\n  kernel-params: ['a\"; reboot; \"']\n", want: []string{"spec.vmdb:4: grub: kernel-params item", "would break GRUB_CMDLINE_LINUX_DEFAULT"}},
		{name: "dirname without mount-on", spec: "steps:\n- mount: boot\n  dirname: /boot\n", want: []string{"spec.vmdb:3: mount: `dirname` needs `mount-on`"}},
		{name: "part flag state", spec: "steps:\n- set_part_flag: x.img\n  tag: boot\n  flag: esp\n  state: on-ish\n", want: []string{"spec.vmdb:5: set_part_flag: state must be"}},
		{name: "luks without key", spec: "steps:\n- cryptsetup: root\n  tag: crypt\n", want: []string{"spec.vmdb:2: cryptsetup step MUST define one of key-file or key-cmd"}},
		{name: "cryptsetup without passphrase", spec: "steps:\n- cryptsetup: root\n  name: crypt\n", want: []string{"spec.vmdb:2: cryptsetup: give the passphrase as exactly one of"}},
		{name: "cryptsetup two passphrases", spec: "steps:\n- cryptsetup: root\n  name: crypt\n  password: a\n  key-cmd: echo b\n", want: []string{"spec.vmdb:5: cryptsetup: give the passphrase as exactly one of"}},
		{name: "cryptsetup empty password", spec: "steps:\n- cryptsetup: root\n  name: crypt\n  password: \"\"\n", want: []string{"spec.vmdb:4: cryptsetup: `password` is empty"}},
		{name: "cryptsetup integrity", spec: "steps:\n- cryptsetup: root\n  name: crypt\n  password: a\n  options: --integrity hmac-sha256\n", want: []string{"spec.vmdb:5: cryptsetup: luksFormat option --integrity: integrity protection needs dm-integrity"}},
		{name: "cryptsetup cipher", spec: "steps:\n- cryptsetup: root\n  name: crypt\n  password: a\n  options: --cipher xchacha20,aes-adiantum-plain64\n", want: []string{"spec.vmdb:5: cryptsetup: luksFormat option --cipher: only aes-xts-plain64"}},
		{name: "mode out of range", spec: "steps:\n- create-dir: /x\n  perm: 0200000\n", want: []string{"spec.vmdb:3: create-dir: perm 65536 is not a file mode"}},
		{name: "several problems at once", spec: "steps:\n- mkimg: x.img\n- echo: a\n- bogus: 1\n- mkimg: y.img\n  size: 5\n",
			want: []string{"spec.vmdb:2: step is incomplete", "spec.vmdb:4: no step kind has the keys `bogus`", "spec.vmdb:6: mkimg: key `size` must be a string", "3 problems in spec.vmdb"}},
		{name: "debootstrap empty mirror", spec: "steps:\n- debootstrap: bookworm\n  target: /\n  mirror: \"\"\n", want: []string{"spec.vmdb:4: debootstrap: `mirror` is empty"}},
		// Tags, mounts and partitions: the preflight's simulation.
		{name: "unknown tag", spec: badHead + badRootPart + "  - mkfs: ext4\n    partition: nosuch\n", want: []string{"spec.vmdb:12: mkfs: Unknown tag: nosuch"}},
		{name: "cryptsetup unknown tag", spec: badHead + badRootPart + "  - cryptsetup: nosuch\n    password: a\n    name: crypt\n", want: []string{"spec.vmdb:11: cryptsetup: Unknown tag: nosuch"}},
		{name: "luks missing key-file", spec: badHead + badRootPart + "  - cryptsetup: /\n    tag: crypt\n    key-file: no-such-key\n", want: []string{"spec.vmdb:13: cryptsetup: the file no-such-key does not exist"}},
		{name: "tag used twice", spec: badHead + badRootPart + badPart("50MiB", "90MiB", "/"), want: []string{"spec.vmdb:15: mkpart: Tag already used: /"}},
		{name: "tag mounted twice", spec: badRooted + "  - mount: /\n", want: []string{"spec.vmdb:14: mount: Already mounted tag: /"}},
		{name: "fstab before mount", spec: badHead + badRootPart + "  - mkfs: ext4\n    partition: /\n  - fstab: /\n  - mount: /\n", want: []string{"spec.vmdb:13: fstab: tag / is not mounted"}},
		{name: "chroot before mount", spec: badHead + badRootPart + "  - mkfs: ext4\n    partition: /\n  - chroot: /\n    shell: echo hi\n  - mount: /\n", want: []string{"spec.vmdb:13: chroot: tag / is not mounted"}},
		{name: "shell before mount", spec: badHead + badRootPart + "  - mkfs: ext4\n    partition: /\n  - shell: echo hi\n    root-fs: /\n  - mount: /\n", want: []string{"spec.vmdb:13: shell: tag / is not mounted"}},
		{name: "file step before any mount", spec: badHead + "  - create-file: /etc/x\n    contents: x\n", want: []string{"spec.vmdb:6: create-file: no filesystem is mounted at /"}},
		{name: "mounted without mkfs", spec: badHead + badRootPart + "  - mount: /\n", want: []string{"spec.vmdb:11: mount: tag / was mounted but has no filesystem: add a `mkfs` step"}},
		{name: "mkfs twice", spec: badRooted + "  - mkfs: vfat\n    partition: /\n", want: []string{"spec.vmdb:15: mkfs: Already has filesystem type: /"}},
		{name: "start after end", spec: badHead + badPart("50MiB", "10MiB", "/"), want: []string{"spec.vmdb:6: mkpart: mkpart 50MiB 10MiB: the end", "is before the start"}},
		{name: "overlapping partitions", spec: badHead + badPart("1MiB", "50MiB", "a") + badPart("40MiB", "90MiB", "b"), want: []string{"spec.vmdb:11: mkpart: ", "overlaps partition 1"}},
		{name: "partition beyond the disk", spec: badHead + badPart("1MiB", "2GiB", "/"), want: []string{"spec.vmdb:6: mkpart: ", "outside of the device"}},
		{name: "fifth msdos primary", spec: five, want: []string{"spec.vmdb:22: mkpart: ", "all 4 primary msdos partitions are in use"}},
		{name: "129 GPT partitions", spec: many, want: []string{"spec.vmdb:518: mkpart: ", "all 128 GPT entries are in use"}},
		{name: "unknown flag", spec: badHead + badRootPart + "  - set_part_flag: \"{{ output }}\"\n    tag: /\n    flag: bogus\n", want: []string{"spec.vmdb:13: set_part_flag: set flag: unknown flag \"bogus\" for a msdos label"}},
		{name: "logical partition", spec: strings.Replace(badHead+badRootPart, "mkpart: primary", "mkpart: logical", 1), want: []string{"spec.vmdb:6: mkpart: mkpart logical: extended and logical msdos partitions are not supported yet"}},
		{name: "unknown partition fs-type", spec: badHead + badRootPart + "    fs-type: bogus\n", want: []string{"spec.vmdb:6: mkpart: unknown file system type \"bogus\""}},
		{name: "device other than --output", spec: strings.Replace(badHead+badRootPart, "device: \"{{ output }}\"\n    start", "device: /etc/passwd\n    start", 1), want: []string{"spec.vmdb:7: mkpart: \"/etc/passwd\" is not the image given with --output or --image"}},
		{name: "mkimg of another file", spec: "steps:\n  - mkimg: other.img\n    size: 10M\n", want: []string{"spec.vmdb:2: mkimg: \"other.img\" is not the image given with --output"}},
		{name: "absurd size", spec: "steps:\n  - mkimg: \"{{ output }}\"\n    size: 100P\n", want: []string{"spec.vmdb:3: mkimg: image size \"100P\" is 100 PiB, more than the 1 PiB"}},
		{name: "grub uefi on a non-vfat ESP", spec: badRooted + "  - grub: uefi\n    tag: /\n    efi: /\n", want: []string{"spec.vmdb:14: grub: the EFI system partition / must be vfat, not \"ext4\""}},
		{name: "grub uefi for armel", spec: badHead + badPart("1MiB", "3MiB", "efi") + badPart("3MiB", "100%", "/") +
			"  - mkfs: vfat\n    partition: efi\n  - mkfs: ext4\n    partition: /\n  - mount: /\n  - mount: efi\n    dirname: /boot/efi\n    mount-on: /\n" +
			"  - debootstrap: bookworm\n    target: /\n    mirror: http://deb.debian.org/debian\n    arch: armel\n  - grub: uefi\n    tag: /\n    efi: efi\n",
			want: []string{"spec.vmdb:28: grub: Debian has no EFI GRUB for armel (grub: uefi is for amd64, arm64, armhf, i386)"}},
		{name: "grub bios without room", spec: strings.Replace(badRooted, "start: 1MiB", "start: 34s", 1) + "  - grub: bios\n    tag: /\n", want: []string{"spec.vmdb:14: grub: no room for GRUB's core.img"}},
		{name: "grub without tag", spec: "steps:\n  - grub: bios\n", want: []string{"spec.vmdb:2: grub: give the root filesystem's tag in `tag`"}},
		{name: "apt without tag", spec: "steps:\n  - apt: install\n    packages: [vim]\n", want: []string{"spec.vmdb:2: apt: give the root filesystem's tag in `tag`"}},
		{name: "vfat option", spec: badHead + badRootPart + "  - mkfs: vfat\n    partition: /\n    options: -Q\n", want: []string{"spec.vmdb:13: mkfs: mkfs.fat option -Q is not supported"}},
		// Ids, templates, options and host files.
		{name: "uid beyond 32 bits", spec: badRooted + "  - create-file: /x\n    contents: x\n    uid: 4294967296\n", want: []string{"spec.vmdb:16: create-file: uid 4294967296 is not a user or group id (0 to 4294967294)"}},
		{name: "negative gid", spec: badRooted + "  - create-dir: /x\n    gid: -1\n", want: []string{"spec.vmdb:15: create-dir: gid -1 is not a user or group id"}},
		{name: "image with --output", spec: "steps:\n  - mkimg: \"{{ output }}\"\n    size: 10M\n  - echo: \"{{ image }}\"\n", want: []string{"spec.vmdb:4: `{{ image }}` renders as None here, since this build was given --output, not --image"}},
		{name: "output with --image", spec: "steps:\n  - mklabel: gpt\n    device: \"{{ output }}\"\n", args: []string{"--image", "out.img"}, want: []string{"spec.vmdb:3: `{{ output }}` renders as None here, since this build was given --image, not --output"}},
		{name: "unpack-rootfs without tarball", spec: badRooted + "  - unpack-rootfs: /\n", want: []string{"spec.vmdb:14: unpack-rootfs: this step needs --rootfs-tarball FILE"}},
		{name: "cache-rootfs without tarball", spec: badRooted + "  - cache-rootfs: /\n    unless: rootfs_unpacked\n", want: []string{"spec.vmdb:14: cache-rootfs: this step needs --rootfs-tarball FILE"}},
		{name: "missing copy-file source", spec: badRooted + "  - copy-file: /x\n    src: nosuch.txt\n", want: []string{"spec.vmdb:15: copy-file: the file nosuch.txt does not exist on this host"}},
		{name: "copy-file of a directory", spec: badRooted + "  - copy-file: /x\n    src: adir\n", files: map[string]string{"adir/f": "x"}, want: []string{"spec.vmdb:15: copy-file: adir is a directory"}},
		{name: "missing copy-dir source", spec: badRooted + "  - copy-dir: /x\n    src: nosuchdir\n", want: []string{"spec.vmdb:15: copy-dir: the directory nosuchdir does not exist on this host"}},
		{name: "missing playbook", spec: badRooted + "  - ansible: /\n    playbook: nosuch.yml\n", want: []string{"spec.vmdb:15: ansible: the file nosuch.yml does not exist on this host"}},
		{name: "image directory missing", spec: "steps:\n  - mkimg: \"{{ output }}\"\n    size: 10M\n", args: []string{"--output", "nosuchdir/out.img"}, want: []string{"spec.vmdb:2: mkimg: cannot create nosuchdir/out.img: the directory nosuchdir does not exist"}},
		{name: "lvcreate without vgcreate", spec: "steps:\n  - echo: first\n  - lvcreate: vg\n    name: root\n    size: 1G\n", want: []string{"spec.vmdb:3: lvcreate: Volume group \"vg\" not found (create it with a `vgcreate` step first)"}},
		{name: "every problem at once", spec: "steps:\n  - echo: \"{{ oops\"\n    teardown: 5\n" + badHead[len("steps:\n"):] +
			badPart("1MiB", "50MiB", "a") + badPart("40MiB", "90MiB", "") + "  - mount: a\n  - copy-file: /x\n    src: nosuch.txt\n" +
			"  - create-file: /y\n    contents: y\n    uid: 4294967296\n  - cache-rootfs: a\n  - bogus: 1\n",
			want: []string{"spec.vmdb:2: template error", "spec.vmdb:3: echo: key `teardown` must be a string", "spec.vmdb:13: mkpart: ",
				"spec.vmdb:17: mount: tag a was mounted but has no filesystem", "spec.vmdb:19: copy-file: the file nosuch.txt does not exist",
				"spec.vmdb:22: create-file: uid 4294967296", "spec.vmdb:23: cache-rootfs: this step needs --rootfs-tarball",
				"spec.vmdb:24: no step kind has the keys `bogus`", "vmdb2: 8 problems in spec.vmdb"}},
		// Bytes YAML cannot read.
		{name: "not UTF-8", spec: "steps:\n- echo: caf\xe9\n", want: []string{"spec.vmdb:2: the spec is not UTF-8 text: byte 0xe9 at column 12"}},
		{name: "control character", spec: "steps:\n- echo: a\n- echo: b\x1bc\n", want: []string{"spec.vmdb:3: the spec holds the control character U+001B at column 10"}},
		{name: "NUL byte", spec: "steps:\n- echo: a\x00\n", want: []string{"spec.vmdb:2: the spec holds a NUL byte at column 10"}},
	}
}

// TestBadSpecs checks that each broken spec is refused before anything is
// written: exit status 1 and every message with its spec.vmdb:LINE; no file
// created (nor a stage); an existing output file keeps its size, bytes and
// mtime; and --dry-run refuses it with the same messages.
func TestBadSpecs(t *testing.T) {
	for _, c := range badSpecs() {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if args == nil {
				args = []string{"--output", "out.img"}
			}
			dir, tmp := badSpecDir(t, c)
			r := runBad(t, dir, tmp, c, args)
			checkNothingWritten(t, dir, tmp, c, nil)
			// An existing output (or image) must stay as it is.
			if args[1] != "nosuchdir/out.img" {
				old := existingImage(t, filepath.Join(dir, "out.img"))
				again := runBad(t, dir, tmp, c, args)
				if again.stderr != r.stderr {
					t.Errorf("with an existing output the messages differ:\n%s\nvs\n%s", r.stderr, again.stderr)
				}
				checkNothingWritten(t, dir, tmp, c, old)
			}
			dry := runBad(t, dir, tmp, c, append([]string{"--dry-run"}, args...))
			if dry.stderr != r.stderr {
				t.Errorf("--dry-run reports otherwise:\n%s\nwhere the build reports:\n%s", dry.stderr, r.stderr)
			}
		})
	}
}

// badSpecDir writes the case's spec and files into a new directory, with
// an empty directory for TMPDIR.
func badSpecDir(t *testing.T, c badSpecCase) (dir, tmp string) {
	t.Helper()
	dir, tmp = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(c.spec), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range c.files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, tmp
}

// runBad runs the case and checks it was refused as it should be.
func runBad(t *testing.T, dir, tmp string, c badSpecCase, args []string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"spec.vmdb"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "VMDB2_STAGE_DIR="+tmp)
	r := runCommand(t, cmd)
	if r.code != 1 {
		t.Fatalf("%v: exit %d, want 1\nstderr: %s", args, r.code, r.stderr)
	}
	for _, w := range c.want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%v: stderr lacks %q:\n%s", args, w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("stack trace: %s", r.stderr)
	}
	if !strings.HasPrefix(args[0], "--dry") && r.stdout != "" {
		t.Errorf("stdout should be empty without -v: %q", r.stdout)
	}
	return r
}

// existingImage writes a 5 MB output file with an old mtime and returns
// what it is.
func existingImage(t *testing.T, path string) os.FileInfo {
	t.Helper()
	if err := os.WriteFile(path, existingBytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// existingBytes is the content of the existing output file: 5 MB.
func existingBytes() []byte {
	data := make([]byte, 5<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	return data
}

// checkNothingWritten: dir holds only what the case put there (and the
// existing output, unchanged), and no stage was made.
func checkNothingWritten(t *testing.T, dir, tmp string, c badSpecCase, existing os.FileInfo) {
	t.Helper()
	want := map[string]bool{"spec.vmdb": true}
	for name := range c.files {
		want[strings.Split(name, "/")[0]] = true
	}
	if existing != nil {
		want["out.img"] = true
		out := filepath.Join(dir, "out.img")
		fi, err := os.Stat(out)
		if err != nil || fi.Size() != existing.Size() || !fi.ModTime().Equal(existing.ModTime()) {
			t.Errorf("the existing output was changed: %v %v", fi, err)
		} else if data, _ := os.ReadFile(out); !bytes.Equal(data, existingBytes()) {
			t.Errorf("the existing output's bytes were changed")
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("created %s", e.Name())
		}
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("a stage was made: %s", entries[0].Name())
	}
}

// TestWarningsDoNotStop checks that unknown keys are warned about, with
// their line, and the build goes on (vmdb2 ignores them silently).
func TestWarningsDoNotStop(t *testing.T) {
	spec := "steps:\n- echo: hello\n  teardwn: x\n  colour: red\n"
	r := runVmdb2(t, t.TempDir(), spec, "-v", "-", "--output", "x.img")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"<stdin>:3: warning: echo: unknown key `teardwn`, ignored (as vmdb2 does); did you mean `teardown`?", "<stdin>:4: warning: echo: unknown key `colour`"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "hello") {
		t.Errorf("step did not run: %s", r.stdout)
	}
}
