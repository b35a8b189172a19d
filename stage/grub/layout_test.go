package grub

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	rootUUID = "3f0e8a7c-1234-4cde-9abc-0123456789ab"
	bootUUID = "9d1b2c3a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	luksUUID = "6a4f0c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
	vgUUID   = "Abcdef-1234-5678-9abc-def0-1234-567890"
	lvUUID   = "Zyxwvu-9876-5432-10ab-cdef-9876-543210"
)

var (
	lvRoot   = Layer{Kind: LayerLVM, Name: "vg0-root", VGUUID: vgUUID, LVUUID: lvUUID}
	luksRoot = Layer{Kind: LayerLUKS, Name: "cleartext", UUID: luksUUID}
)

// probe writes the stand-in for l and returns a function that runs it.
func probe(t *testing.T, l Layout) func(args ...string) (string, error) {
	t.Helper()
	script, err := ProbeScript(l)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "grub-probe")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, error) {
		out, err := exec.Command("sh", append([]string{p}, args...)...).Output()
		return strings.TrimSuffix(string(out), "\n"), err
	}
}

// tree makes a directory standing for the target's root with boot/grub
// in it, and a symbolic link bootlink -> boot; the stand-in resolves
// paths with readlink -f, as it does inside the target.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "boot/grub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("boot", filepath.Join(dir, "bootlink")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The stand-in tells a separate /boot from the root filesystem, by path
// and by device, for every target grub-mkconfig asks.
func TestProbeSeparateBoot(t *testing.T) {
	dir := tree(t)
	l := Layout{
		{MountPoint: "/", UUID: rootUUID, Type: "ext4", Table: "msdos", Partition: 2, PartUUID: "0a1b2c3d-02"},
		{MountPoint: dir + "/boot", UUID: bootUUID, Type: "ext2", Label: "BOOT", Table: "msdos", Partition: 1, PartUUID: "0a1b2c3d-01"},
	}
	run := probe(t, l)
	for args, want := range map[string]string{
		"--target=device /":                                             "/dev/disk/by-uuid/" + rootUUID,
		"--target=device " + dir:                                        "/dev/disk/by-uuid/" + rootUUID,
		"--target=device " + dir + "/boot":                              "/dev/disk/by-uuid/" + bootUUID,
		"-t device " + dir + "/boot/grub":                               "/dev/disk/by-uuid/" + bootUUID,
		"-t device " + dir + "/bootlink/grub":                           "/dev/disk/by-uuid/" + bootUUID,
		"-t device " + dir + "/boot/vmlinuz-6.1.0-1-amd64":              "/dev/disk/by-uuid/" + bootUUID,
		"-t device " + dir + "/bootx":                                   "/dev/disk/by-uuid/" + rootUUID,
		"--device /dev/disk/by-uuid/" + bootUUID + " -t fs":             "ext2",
		"--device /dev/disk/by-uuid/" + bootUUID + " --target=fs_uuid":  bootUUID,
		"--device /dev/disk/by-uuid/" + rootUUID + " --target=fs_uuid":  rootUUID,
		"--device /dev/disk/by-partuuid/0a1b2c3d-01 --target=fs_label":  "BOOT",
		"--device /dev/disk/by-uuid/" + bootUUID + " --target=partuuid": "0a1b2c3d-01",
		"--device /dev/disk/by-uuid/" + rootUUID + " --target=partuuid": "0a1b2c3d-02",
		"-d /dev/disk/by-uuid/" + bootUUID + " -t partmap":              "msdos",
		"-d /dev/disk/by-uuid/" + bootUUID + " -t abstraction":          "",
		"-d /dev/disk/by-uuid/" + bootUUID + " -t cryptodisk_uuid":      "",
		"-d /dev/disk/by-uuid/" + bootUUID + " -t compatibility_hint":   "hd0,msdos1",
		"-d /dev/disk/by-uuid/" + rootUUID + " -t compatibility_hint":   "hd0,msdos2",
		"-d /dev/disk/by-uuid/" + bootUUID + " -t hints_string":         "--hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1",
		"-d /dev/disk/by-uuid/" + bootUUID + " -t bios_hints":           "hd0,msdos1",
		"-d /dev/disk/by-uuid/" + bootUUID + " -t efi_hints":            "hd0,msdos1",
		"-t drive " + dir + "/boot/grub":                                "(hd0,msdos1)",
		"-tdrive " + dir:                                                "(hd0,msdos2)",
		"-t disk " + dir + "/boot":                                      "/dev/disk/by-uuid/" + bootUUID,
	} {
		got, err := run(strings.Fields(args)...)
		if err != nil || got != want {
			t.Errorf("grub-probe %s = %q, %v; want %q", args, got, err, want)
		}
	}
	for _, args := range []string{
		"--device /dev/sda9 --target=fs",        // no such device
		"--target=zero_check /",                 // not answered
		"--target=fs " + dir + "/missing/dir/x", // no canonical path
		"--target=fs",                           // nothing asked about
	} {
		if got, err := run(strings.Fields(args)...); err == nil {
			t.Errorf("grub-probe %s = %q; want a failure", args, got)
		}
	}
}

// A filesystem on an LV, on LUKS, on LVM on LUKS and on LUKS on LVM gets
// the spellings of the real grub-probe.
func TestProbeLayers(t *testing.T) {
	cases := []struct {
		name   string
		layers []Layer
		want   map[string]string
	}{
		{"lvm", []Layer{lvRoot}, map[string]string{
			"device": "/dev/mapper/vg0-root", "drive": "(lvmid/" + vgUUID + "/" + lvUUID + ")",
			"abstraction": "lvm", "cryptodisk_uuid": "", "partuuid": "", "partmap": "gpt",
			"compatibility_hint": "lvmid/" + vgUUID + "/" + lvUUID, "bios_hints": "lvmid/" + vgUUID + "/" + lvUUID,
			"hints_string": "--hint='lvmid/" + vgUUID + "/" + lvUUID + "'", "fs": "ext2", "fs_uuid": rootUUID,
		}},
		{"luks", []Layer{luksRoot}, map[string]string{
			"device": "/dev/mapper/cleartext", "drive": "(cryptouuid/6a4f0c1e2b3d4e5f8a9b0c1d2e3f4a5b)",
			"abstraction": "cryptodisk\nluks2", "cryptodisk_uuid": "6a4f0c1e2b3d4e5f8a9b0c1d2e3f4a5b", "partuuid": "",
			"partmap": "gpt", "fs_uuid": rootUUID,
		}},
		{"lvm on luks", []Layer{lvRoot, luksRoot}, map[string]string{
			"device": "/dev/mapper/vg0-root", "drive": "(lvmid/" + vgUUID + "/" + lvUUID + ")",
			"abstraction": "cryptodisk\nluks2\nlvm", "cryptodisk_uuid": "6a4f0c1e2b3d4e5f8a9b0c1d2e3f4a5b",
		}},
		{"luks on lvm", []Layer{luksRoot, lvRoot}, map[string]string{
			"device": "/dev/mapper/cleartext", "drive": "(cryptouuid/6a4f0c1e2b3d4e5f8a9b0c1d2e3f4a5b)",
			"abstraction": "lvm\ncryptodisk\nluks2", "cryptodisk_uuid": "6a4f0c1e2b3d4e5f8a9b0c1d2e3f4a5b",
		}},
	}
	for _, c := range cases {
		l := Layout{{UUID: rootUUID, Type: "ext4", Table: "gpt", Partition: 3, PartUUID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", Layers: c.layers}}
		run := probe(t, l)
		for target, want := range c.want {
			for _, args := range [][]string{{"--target=" + target, "/"}, {"--device", l[0].device(), "--target=" + target}} {
				if got, err := run(args...); err != nil || got != want {
					t.Errorf("%s: grub-probe %s = %q, %v; want %q", c.name, strings.Join(args, " "), got, err, want)
				}
			}
		}
	}
}

// Mount points and labels may hold quotes, blanks and shell characters:
// the stand-ins match them literally and run nothing.
func TestProbeOddNames(t *testing.T) {
	dir := tree(t)
	odd := filepath.Join(dir, "it's $(touch pwned) *")
	if err := os.MkdirAll(filepath.Join(odd, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := Layout{
		{UUID: rootUUID, Type: "ext4", Table: "gpt", Partition: 1},
		{MountPoint: odd, UUID: bootUUID, Type: "ext4", Label: "a 'b' $(c)", Table: "gpt", Partition: 2},
	}
	run := probe(t, l)
	for _, c := range [][3]string{
		{"-t", "fs_uuid", odd + "/sub"},
		{"-t", "fs_label", odd},
	} {
		want := bootUUID
		if c[1] == "fs_label" {
			want = "a 'b' $(c)"
		}
		if got, err := run(c[:]...); err != nil || got != want {
			t.Errorf("grub-probe %q = %q, %v; want %q", c, got, err, want)
		}
	}
	if got, _ := run("-t", "fs_uuid", filepath.Join(dir, "it's $(touch pwned) x")); got != rootUUID {
		t.Errorf("a sibling of the odd mount point is on %q; want the root", got)
	}
	script, err := MkrelpathScript(l)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", script, "sh", odd+"/sub").Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "/sub" {
		t.Errorf("grub-mkrelpath = %q, %v; want /sub", got, err)
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Error("a mount point's name was run as a command")
	}
}

// grub-mkrelpath answers relative to the filesystem holding the path.
func TestMkrelpath(t *testing.T) {
	dir := tree(t)
	l := Layout{{UUID: rootUUID, Type: "ext4", Table: "gpt", Partition: 2}, {MountPoint: dir + "/boot", UUID: bootUUID, Type: "ext4", Table: "gpt", Partition: 1}}
	script, err := MkrelpathScript(l)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "grub-mkrelpath")
	os.WriteFile(p, []byte(script), 0o755)
	for arg, want := range map[string]string{
		dir + "/boot/vmlinuz-6.1": "/vmlinuz-6.1",
		dir + "/boot":             "",
		dir + "/bootlink/grub":    "/grub",
		dir + "/etc":              dir + "/etc",
		"/":                       "",
	} {
		out, err := exec.Command("sh", p, arg).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("grub-mkrelpath %s = %q, %v; want %q", arg, got, err, want)
		}
	}
}

// core.img's prefix, embedded search and modules point at the
// filesystem holding /boot/grub, on every platform.
func TestBootConfig(t *testing.T) {
	root := Filesystem{UUID: rootUUID, Type: "ext4", Table: "msdos", Partition: 2}
	boot := Filesystem{MountPoint: "/boot", UUID: bootUUID, Type: "ext2", Table: "msdos", Partition: 1}
	lvBoot := Filesystem{MountPoint: "/boot", UUID: bootUUID, Type: "ext4", Table: "gpt", Partition: 2, Layers: []Layer{{Kind: LayerLVM, Name: "vg0-boot", VGUUID: vgUUID, LVUUID: lvUUID}}}
	lvRootFS := root
	lvRootFS.Layers = []Layer{lvRoot}
	lvm := "lvmid/" + vgUUID + "/" + lvUUID
	cases := []struct {
		name                 string
		l                    Layout
		prefix, early, ofPfx string
		mods                 string
	}{
		{"root", Layout{root}, "(hd0,msdos2)/boot/grub",
			"search --no-floppy --fs-uuid --set=root --hint=hd0,msdos2 " + rootUUID + "\nset prefix=($root)/boot/grub\n", "/boot/grub", "ext2"},
		{"separate /boot", Layout{root, boot}, "(hd0,msdos1)/grub",
			"search --no-floppy --fs-uuid --set=root --hint=hd0,msdos1 " + bootUUID + "\nset prefix=($root)/grub\n", "/grub", "ext2"},
		{"/boot on an LV", Layout{lvBoot, root}, "(" + lvm + ")/grub",
			"search --no-floppy --fs-uuid --set=root --hint=" + lvm + " " + bootUUID + "\nset prefix=($root)/grub\n", "(" + lvm + ")/grub", "lvm ext2"},
		{"root on an LV holding /boot", Layout{lvRootFS}, "(" + lvm + ")/boot/grub",
			"search --no-floppy --fs-uuid --set=root --hint=" + lvm + " " + rootUUID + "\nset prefix=($root)/boot/grub\n", "(" + lvm + ")/boot/grub", "lvm ext2"},
	}
	for _, c := range cases {
		got, err := BootConfig(c.l)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.Prefix != c.prefix || got.Early != c.early || strings.Join(got.Modules, " ") != c.mods {
			t.Errorf("%s: BootConfig = %+v; want prefix %q, early %q, modules %q", c.name, got, c.prefix, c.early, c.mods)
		}
		of, err := IEEE1275Config(c.l)
		if err != nil || of.Prefix != c.ofPfx || strings.Join(of.Modules, " ") != c.mods || !strings.Contains(of.Early, "set prefix=($root)"+strings.TrimPrefix(c.ofPfx, "("+lvm+")")+"\n") {
			t.Errorf("%s: IEEE1275Config = %+v, %v; want prefix %q", c.name, of, err, c.ofPfx)
		}
		sb, err := SecureBootConfig(c.l)
		drive, dir, _ := strings.Cut(strings.TrimPrefix(c.prefix, "("), ")")
		if want := "search.fs_uuid " + strings.Fields(c.early)[5] + " root " + drive + " \nset prefix=($root)'" + dir + "'\n"; err != nil || !strings.HasPrefix(sb, want) {
			t.Errorf("%s: SecureBootConfig = %q, %v; want it to start %q", c.name, sb, err, want)
		}
	}
}

// /boot/grub on LUKS, or on a filesystem GRUB cannot read, is refused
// before anything is built; so are values that would break the scripts.
func TestLayoutRefusals(t *testing.T) {
	root := Filesystem{UUID: rootUUID, Type: "ext4", Table: "msdos", Partition: 2}
	encRoot := root
	encRoot.Layers = []Layer{lvRoot, luksRoot}
	encBoot := Filesystem{MountPoint: "/boot", UUID: bootUUID, Type: "ext4", Table: "msdos", Partition: 1, Layers: []Layer{luksRoot}}
	ntfsBoot := Filesystem{MountPoint: "/boot", UUID: bootUUID, Type: "ntfs", Table: "msdos", Partition: 1}
	for name, l := range map[string]Layout{
		"encrypted root holding /boot": {encRoot},
		"encrypted /boot":              {root, encBoot},
		"ntfs /boot":                   {root, ntfsBoot},
		"no root":                      {encBoot},
		"two roots":                    {root, root},
		"bad UUID":                     {{UUID: "x'; rm -rf /", Type: "ext4", Table: "msdos", Partition: 1}},
		"no UUID":                      {{Type: "ext4", Table: "msdos", Partition: 1}},
		"bad table":                    {{UUID: rootUUID, Type: "ext4", Table: "sun", Partition: 1}},
		"no partition":                 {{UUID: rootUUID, Type: "ext4", Table: "gpt"}},
		"bad device":                   {{UUID: rootUUID, Type: "ext4", Table: "gpt", Partition: 1, Device: "/dev/$(reboot)"}},
		"unclean mount point":          {root, {MountPoint: "/boot/../etc", UUID: bootUUID, Type: "ext4", Table: "msdos", Partition: 1}},
		"relative mount point":         {root, {MountPoint: "boot", UUID: bootUUID, Type: "ext4", Table: "msdos", Partition: 1}},
		"bad mapper name":              {{UUID: rootUUID, Type: "ext4", Table: "gpt", Partition: 1, Layers: []Layer{{Kind: LayerLUKS, Name: "a b", UUID: luksUUID}}}},
		"short LVM ids":                {{UUID: rootUUID, Type: "ext4", Table: "gpt", Partition: 1, Layers: []Layer{{Kind: LayerLVM, Name: "vg-lv", VGUUID: "x", LVUUID: "y"}}}},
	} {
		if _, err := BootConfig(l); err == nil {
			t.Errorf("%s: BootConfig accepted %+v", name, l)
		}
	}
	// An encrypted root with a plain /boot is fine: GRUB never reads the root.
	if _, err := BootConfig(Layout{encRoot, {MountPoint: "/boot", UUID: bootUUID, Type: "ext4", Table: "msdos", Partition: 1}}); err != nil {
		t.Errorf("encrypted root, plain /boot: %v", err)
	}
}
