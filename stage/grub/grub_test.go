package grub

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestKernelParams(t *testing.T) {
	cases := []struct {
		d    Defaults
		want string
	}{
		{Defaults{}, "biosdevname=0 net.ifnames=0 consoleblank=0 rw systemd.show_status=true"},
		{Defaults{Quiet: true}, "biosdevname=0 net.ifnames=0 consoleblank=0 rw quiet systemd.show_status=false rd.systemd.show_status=false"},
		{Defaults{Serial: true, Arch: "amd64"}, "biosdevname=0 net.ifnames=0 consoleblank=0 rw loglevel=3 console=tty0 console=ttyS0,115200n8 systemd.show_status=true"},
		{Defaults{Serial: true, Arch: "arm64"}, "biosdevname=0 net.ifnames=0 consoleblank=0 rw loglevel=3 console=tty0 console=ttyAMA0,115200n8 systemd.show_status=true"},
		{Defaults{Serial: true, Arch: "ppc64el", Quiet: true}, "biosdevname=0 net.ifnames=0 consoleblank=0 rw loglevel=3 console=tty0 console=hvc0,115200n8 quiet systemd.show_status=false rd.systemd.show_status=false"},
	}
	for _, c := range cases {
		if got := strings.Join(KernelParams(c.d), " "); got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.d, got, c.want)
		}
	}
}

// TestEditDefault edits bookworm's /etc/default/grub (grub2-common's
// /usr/share/grub/default/grub, testdata/default-grub) as vmdb2 0.41
// does: each variable replaced where it is, or set after its commented
// example, or appended; nothing else of the file changes.
func TestEditDefault(t *testing.T) {
	in, err := os.ReadFile("testdata/default-grub")
	if err != nil {
		t.Fatal(err)
	}
	got := EditDefault(string(in), Defaults{Serial: true, Arch: "amd64", Timeout: 3, KernelParams: []string{"rw", "vmdb2.kp=1"}})
	want := strings.NewReplacer(
		"GRUB_TIMEOUT=5\n", "GRUB_TIMEOUT=3\n",
		`GRUB_CMDLINE_LINUX_DEFAULT="quiet"`, `GRUB_CMDLINE_LINUX_DEFAULT="rw vmdb2.kp=1 loglevel=3 console=tty0 console=ttyS0,115200n8 systemd.show_status=true"`,
		"#GRUB_TERMINAL=console\n", "#GRUB_TERMINAL=console\nGRUB_TERMINAL=serial\n",
	).Replace(string(in)) + "GRUB_ENABLE_CRYPTODISK=y\n" + `GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"` + "\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// What grub-mkconfig makes of it when it sources the file.
	out, err := exec.Command("sh", "-c", got+"\necho \"$GRUB_TIMEOUT|$GRUB_TERMINAL|$GRUB_CMDLINE_LINUX_DEFAULT|$GRUB_CMDLINE_LINUX|$GRUB_ENABLE_CRYPTODISK\"").Output()
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(out)); s != "3|serial|rw vmdb2.kp=1 loglevel=3 console=tty0 console=ttyS0,115200n8 systemd.show_status=true||y" {
		t.Fatalf("sourced: %q", s)
	}
}

func TestKernelParamsList(t *testing.T) {
	spec := []string{"ro"}
	if got := strings.Join(KernelParams(Defaults{KernelParams: spec, Quiet: true}), " "); got != "ro quiet systemd.show_status=false rd.systemd.show_status=false" {
		t.Errorf("kernel-params [ro]: %s", got)
	}
	if got := strings.Join(KernelParams(Defaults{KernelParams: []string{}}), " "); got != "systemd.show_status=true" {
		t.Errorf("kernel-params []: %s", got)
	}
	if len(spec) != 1 {
		t.Errorf("the spec's list was changed: %q", spec)
	}
}

func TestSetDefault(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "X=1\n"},
		{"A=1", "A=1\nX=1\n"},                        // vmdb2: "A=1X=1"
		{"A=1\r\nB=2\r\n", "A=1\r\nB=2\r\nX=1\n"},    // no match: kept byte for byte
		{"A=1\r\nX=0\r\nB=2\rC", "A=1\nX=1\nB=2\nC"}, // match: LF line ends
		{"X=0\nX=2\n", "X=1\nX=1\n"},                 // every one
		{"#X=0\n", "#X=0\nX=1\n"},                    // after the example
		{"#X=0", "#X=0\nX=1\n"},                      // vmdb2: "#X=0X=1"
		{"#X=0\nX=5\n", "#X=0\nX=1\nX=1\n"},          // both, as vmdb2
		{" X=0\nXY=0\n# X=0\nexport X=0\n", " X=0\nXY=0\n# X=0\nexport X=0\nX=1\n"}, // not matched
	} {
		if got := SetDefault(c.in, "X", "1"); got != c.want {
			t.Errorf("SetDefault(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEarlyConfig(t *testing.T) {
	got := EarlyConfig("u-u-i-d", "hd0,msdos1", "/boot/grub")
	want := "search --no-floppy --fs-uuid --set=root --hint=hd0,msdos1 u-u-i-d\nset prefix=($root)/boot/grub\n"
	if got != want {
		t.Fatalf("got %q", got)
	}
}

func TestInstallEFI(t *testing.T) {
	dir := t.TempDir()
	img := append([]byte("MZ"), make([]byte, 100)...)
	if err := InstallEFI(dir, img, "amd64"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"EFI/BOOT/BOOTX64.EFI", "EFI/debian/grubx64.efi"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || len(b) != len(img) {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := InstallEFI(dir, img, "arm64"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "EFI/debian/grubaa64.efi")); err != nil {
		t.Error(err)
	}
	if err := InstallEFI(dir, []byte("nope"), "amd64"); err == nil {
		t.Error("non-PE image accepted")
	}
	if err := InstallEFI(dir, img, "s390x"); err == nil || !strings.Contains(err.Error(), "no EFI GRUB for s390x") {
		t.Errorf("s390x: %v", err)
	}
	if err := InstallEFI(dir, img, "armel"); err == nil || !strings.Contains(err.Error(), "no EFI GRUB for armel") {
		t.Errorf("armel: %v", err)
	}
}

func TestMissingTools(t *testing.T) {
	tgt := Target{Root: t.TempDir()}
	root := Layout{{UUID: "3f0e8a7c-1234-4cde-9abc-0123456789ab", Type: "ext4", Table: "msdos", Partition: 1}}
	if _, _, err := BuildBIOS(t.Context(), tgt, root); err == nil || !strings.Contains(err.Error(), "grub-common") {
		t.Errorf("BuildBIOS on an empty tree: %v", err)
	}
	if err := MkConfig(t.Context(), tgt, root); err == nil || !strings.Contains(err.Error(), "grub-mkconfig") {
		t.Errorf("MkConfig on an empty tree: %v", err)
	}
	os.MkdirAll(filepath.Join(tgt.Root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(tgt.Root, "usr/bin/grub-mkimage"), nil, 0o755)
	if _, err := BuildEFI(t.Context(), tgt, root, "amd64"); err == nil || !strings.Contains(err.Error(), "grub-efi-amd64-bin") {
		t.Errorf("BuildEFI without modules: %v", err)
	}
}
