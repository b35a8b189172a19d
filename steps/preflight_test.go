package steps

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeHost is a host with every program, no files but those listed, a
// usable namespace, and images that can always be created.
func fakeHost(files ...string) Host {
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
	}
	return Host{
		Output:    "out.img",
		Namespace: func() error { return nil },
		ToolFound: func(string) bool { return true },
		Stat: func(p string) (os.FileInfo, error) {
			if have[p] {
				return fakeFile{name: p, dir: strings.HasSuffix(p, "/")}, nil
			}
			return nil, os.ErrNotExist
		},
		ProbeImage: func(string, int64) error { return nil },
	}
}

type fakeFile struct {
	name string
	dir  bool
}

func (f fakeFile) Name() string       { return f.name }
func (f fakeFile) Size() int64        { return 0 }
func (f fakeFile) Mode() os.FileMode  { return 0o644 }
func (f fakeFile) ModTime() time.Time { return time.Time{} }
func (f fakeFile) IsDir() bool        { return f.dir }
func (f fakeFile) Sys() any           { return nil }

// preflight plans spec and runs the preflight on h; the plan must be free
// of spec errors.
func preflight(t *testing.T, spec string, h Host) Diagnostics {
	t.Helper()
	p, ds := planText(t, DefaultRegistry(), spec, Vars{Output: h.Output, Image: h.Image, RootfsTarball: h.RootfsTarball, Arch: "amd64"})
	if ds.HasErrors() {
		t.Fatalf("spec errors: %v", ds)
	}
	return p.Preflight(h)
}

const rootedSpec = `steps:
- mkimg: "{{ output }}"
  size: 1G
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
`

// cachedSpec is the rootfs_unpacked pattern of the examples (from line 14).
const cachedSpec = rootedSpec + `- unpack-rootfs: /
- debootstrap: bookworm
  target: /
  mirror: http://deb.debian.org/debian
  unless: rootfs_unpacked
- apt: install
  tag: /
  packages: [linux-image-amd64]
  unless: rootfs_unpacked
- cache-rootfs: /
  unless: rootfs_unpacked
- fstab: /
`

// TestPreflightAcceptsWhatBuilds: specs that build are not refused, also
// when `unless` or a host step makes the outcome depend on the run.
func TestPreflightAcceptsWhatBuilds(t *testing.T) {
	noMmdebstrap := fakeHost("cache.tar.zst")
	noMmdebstrap.RootfsTarball = "cache.tar.zst"
	noMmdebstrap.ToolFound = func(p string) bool { return p != "mmdebstrap" }
	cases := []struct {
		name string
		spec string
		host Host
	}{
		{"cache pattern, cache exists (debootstrap skipped, its program not needed)", cachedSpec, noMmdebstrap},
		{"cache pattern, no cache yet", cachedSpec, func() Host { h := fakeHost(); h.RootfsTarball = "new.tar.zst"; return h }()},
		{"a host step may create the source", rootedSpec + "- shell: cp /etc/hostname made.txt\n  root-fs: /\n- copy-file: /x\n  src: made.txt\n", fakeHost()},
		{"a step that may be skipped is not checked", rootedSpec + "- cache-rootfs: /\n- unpack-rootfs: /\n- fstab: nosuch\n  unless: rootfs_unpacked\n",
			func() Host { h := fakeHost(); h.RootfsTarball = "new.tar"; return h }()},
		{"a skipped step is not checked", rootedSpec + "- virtual-filesystems: /\n- fstab: nosuch\n  unless: virtuals\n- chroot: nosuch\n  shell: x\n  unless: []\n", fakeHost()},
		{"nested mount", rootedSpec + "- mkpart: primary\n  device: \"{{ output }}\"\n  start: 1MiB\n  end: 2MiB\n  tag: efi\n", fakeHost()},
		{"sources that exist", rootedSpec + "- copy-file: /x\n  src: a.txt\n- copy-dir: /d\n  src: d/\n  uid: 65535\n", fakeHost("a.txt", "d/")},
	}
	cases[5].spec = strings.Replace(rootedSpec, "start: 1MiB", "start: 3MiB", 1) + "- mkpart: primary\n  device: \"{{ output }}\"\n  start: 1MiB\n  end: 3MiB\n  tag: efi\n- mkfs: vfat\n  partition: efi\n- mount: efi\n  dirname: /boot/efi\n  mount-on: /\n- fstab: /\n- grub: uefi\n  tag: /\n  efi: efi\n"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if ds := preflight(t, c.spec, c.host); len(ds) > 0 {
				t.Errorf("refused: %v", ds)
			}
		})
	}
}

// TestPreflightHost: host programs, the namespace and the ids of an
// ordinary user's build are checked at the first step that needs them,
// once each, and only for steps that run.
func TestPreflightHost(t *testing.T) {
	h := fakeHost()
	h.ToolFound = func(p string) bool { return p != "mke2fs" && p != "mmdebstrap" }
	ds := preflight(t, rootedSpec+"- mkfs: ext3\n  partition: /\n  unless: []\n- debootstrap: bookworm\n  target: /\n  mirror: http://x\n", h)
	want := []string{
		"t.vmdb:11: mkfs: this step needs the host program mke2fs, which is not installed: install the Debian package e2fsprogs",
		"t.vmdb:17: debootstrap: this step needs the host program mmdebstrap, which is not installed: install the Debian package mmdebstrap",
	}
	checkDiagnostics(t, ds, want)

	h = fakeHost()
	h.Namespace = func() error {
		return errors.New("userns: no subordinate id range for user x in /etc/subuid; add a line")
	}
	checkDiagnostics(t, preflight(t, rootedSpec+"- fstab: /\n", h),
		[]string{"t.vmdb:11: mkfs: this step runs in the build's user namespace, which cannot be made here: userns: no subordinate id range"})

	h = fakeHost()
	h.Unprivileged = true
	checkDiagnostics(t, preflight(t, rootedSpec+"- create-dir: /x\n  uid: 65535\n  gid: 65536\n", h),
		[]string{"t.vmdb:16: create-dir: gid 65536 is outside the ids an ordinary user's build has (0 to 65535"})
}

func checkDiagnostics(t *testing.T, ds Diagnostics, want []string) {
	t.Helper()
	if len(ds) != len(want) {
		t.Errorf("%d diagnostics, want %d:\n%v", len(ds), len(want), ds)
	}
	for _, w := range want {
		if !strings.Contains(ds.Error(), w) {
			t.Errorf("lacks %q:\n%v", w, ds)
		}
	}
}

// TestDefaultSeedIgnoresPaths: the default seed does not change with the
// paths given on the command line, but does with what the spec says.
func TestDefaultSeedIgnoresPaths(t *testing.T) {
	spec := rootedSpec + "- echo: \"{% if rootfs_tarball %}cached{% endif %} for {{ arch }}\"\n"
	seed := func(spec string, v Vars) string {
		p, ds := planText(t, DefaultRegistry(), spec, v)
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		return p.DefaultSeed()
	}
	a := seed(spec, Vars{Output: "/ci/job1/disk.img", RootfsTarball: "/ci/job1/cache.tar.zst", Arch: "amd64"})
	b := seed(spec, Vars{Output: "b/other.img", RootfsTarball: "x.tgz", Arch: "amd64"})
	if a != b {
		t.Errorf("the seed depends on the paths: %s vs %s", a, b)
	}
	for name, other := range map[string]string{
		"no tarball":   seed(spec, Vars{Output: "b/other.img", Arch: "amd64"}),
		"another size": seed(strings.Replace(spec, "1G", "2G", 1), Vars{Output: "b/other.img", RootfsTarball: "x.tgz", Arch: "amd64"}),
		"another arch": seed(spec, Vars{Output: "b/other.img", RootfsTarball: "x.tgz", Arch: "arm64"}),
	} {
		if other == a {
			t.Errorf("%s: same seed", name)
		}
	}
}

// TestProbeImage: the image's place is checked without leaving anything.
func TestProbeImage(t *testing.T) {
	dir := t.TempDir()
	if err := probeImage(dir+"/nosuch/x.img", 1<<20); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing directory: %v", err)
	}
	if err := probeImage(dir, 1<<20); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	if err := probeImage(dir+"/x.img", 1<<30); err != nil {
		t.Errorf("a fine place refused: %v", err)
	}
	// ext4 holds files of at most 16 TiB.
	if describeFS(dir).typ == "ext2/3/4" {
		if err := probeImage(dir+"/x.img", 1<<50); err == nil || !strings.Contains(err.Error(), "cannot hold a file of") {
			t.Errorf("1 PiB on ext4: %v", err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the probe left %s", entries[0].Name())
	}
}

// foreignArch is an architecture this host does not run natively.
func foreignArch() string {
	if HostArch() == "armhf" {
		return "arm64"
	}
	return "armhf"
}

// TestPreflightForeignArch: a foreign architecture this host cannot run
// (no qemu-user handler) is refused at the first step that runs the
// target's programs, once, before anything is written: the bootstrap step,
// or, when a rootfs cache makes it skip, the first chroot after it. With
// the handler the same specs are accepted, having asked the host once.
// An architecture the table lacks is not checked here.
func TestPreflightForeignArch(t *testing.T) {
	foreign := foreignArch()
	bootstrapped := rootedSpec + "- debootstrap: bookworm\n  target: /\n  mirror: http://deb.debian.org/debian\n  arch: " + foreign + "\n" +
		"- chroot: /\n  shell: echo hi\n- apt: install\n  tag: /\n  packages: [less]\n"
	cached := strings.Replace(cachedSpec, "  unless: rootfs_unpacked\n- apt:", "  arch: "+foreign+"\n  unless: rootfs_unpacked\n- apt:", 1) +
		"- chroot: /\n  shell: passwd --delete root\n"
	refusal := "this host (amd64) cannot run " + foreign + " programs (no binfmt_misc entry /proc/sys/fs/binfmt_misc/qemu-x); to run them through qemu-user, as root: register it"
	cases := []struct {
		name, spec, want string
		tarball          bool
	}{
		{"debootstrap with arch", bootstrapped, "t.vmdb:14: debootstrap: " + refusal, false},
		{"qemu-debootstrap", strings.Replace(bootstrapped, "- debootstrap:", "- qemu-debootstrap:", 1), "t.vmdb:14: qemu-debootstrap: " + refusal, false},
		{"cached: debootstrap skipped, then a chroot", cached, "t.vmdb:27: chroot: " + refusal, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			asked := map[string]int{}
			h := fakeHost("cache.tar.zst")
			if c.tarball {
				h.RootfsTarball = "cache.tar.zst"
			}
			h.CheckArch = func(arch string) error {
				asked[arch]++
				return errors.New("bootstrap: " + strings.Replace(refusal, foreign, arch, 1))
			}
			checkDiagnostics(t, preflight(t, c.spec, h), []string{c.want})
			h.CheckArch = func(arch string) error { asked[arch]++; return nil }
			asked = map[string]int{}
			if ds := preflight(t, c.spec, h); len(ds) > 0 {
				t.Errorf("refused with the handler: %v", ds)
			}
			if asked[foreign] != 1 || len(asked) != 1 {
				t.Errorf("the host was asked %v, want %s once", asked, foreign)
			}
		})
	}
	// A name the table lacks (a template's placeholder) is the step's to
	// refuse, with the list of known names.
	h := fakeHost()
	h.CheckArch = func(arch string) error { t.Errorf("the host was asked about %s", arch); return nil }
	if ds := preflight(t, strings.Replace(bootstrapped, foreign, "__ARCH__", 1), h); len(ds) > 0 {
		t.Errorf("a placeholder arch refused at plan time: %v", ds)
	}
}

// efiSpec is an image with an ESP whose root is bootstrapped for arch
// (line 24) and gets `grub: uefi` (line 28).
func efiSpec(arch string) string {
	return strings.Replace(rootedSpec, "start: 1MiB", "start: 3MiB", 1) +
		"- mkpart: primary\n  device: \"{{ output }}\"\n  start: 1MiB\n  end: 3MiB\n  tag: efi\n- mkfs: vfat\n  partition: efi\n" +
		"- mount: efi\n  dirname: /boot/efi\n  mount-on: /\n" +
		"- debootstrap: bookworm\n  target: /\n  mirror: http://deb.debian.org/debian\n  arch: " + arch + "\n" +
		"- grub: uefi\n  tag: /\n  efi: efi\n"
}

// TestPreflightArmEFI: `grub: uefi` is planned for armhf (grub-efi-arm)
// and arm64 and refused for armel, which Debian has no EFI GRUB for, at
// the grub step's line, naming the architectures that have it; armel is
// otherwise accepted.
func TestPreflightArmEFI(t *testing.T) {
	h := fakeHost()
	h.CheckArch = func(string) error { return nil }
	for _, arch := range []string{"armhf", "arm64"} {
		if ds := preflight(t, efiSpec(arch), h); len(ds) > 0 {
			t.Errorf("%s: refused: %v", arch, ds)
		}
	}
	checkDiagnostics(t, preflight(t, efiSpec("armel"), h),
		[]string{"t.vmdb:28: grub: Debian has no EFI GRUB for armel (grub: uefi is for amd64, arm64, armhf, i386)"})
	armel := strings.Replace(efiSpec("armel"), "- grub: uefi\n  tag: /\n  efi: efi\n", "- chroot: /\n  shell: dpkg --print-architecture\n", 1)
	if ds := preflight(t, armel, h); len(ds) > 0 {
		t.Errorf("armel without grub: uefi refused: %v", ds)
	}
}
