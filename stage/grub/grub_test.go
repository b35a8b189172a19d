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

// debianDefault is the start of bookworm's /usr/share/grub/default/grub.
const debianDefault = `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=` + "`lsb_release -i -s 2> /dev/null || echo Debian`" + `
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""

#GRUB_TERMINAL=console
`

func TestEditDefault(t *testing.T) {
	got := EditDefault(debianDefault, Defaults{Serial: true, Arch: "amd64", Timeout: 3})
	want := `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=` + "`lsb_release -i -s 2> /dev/null || echo Debian`" + `
GRUB_CMDLINE_LINUX=""

#GRUB_TERMINAL=console
GRUB_CMDLINE_LINUX_DEFAULT="biosdevname=0 net.ifnames=0 consoleblank=0 rw loglevel=3 console=tty0 console=ttyS0,115200n8 systemd.show_status=true"
GRUB_ENABLE_CRYPTODISK=y
GRUB_TIMEOUT=3
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// What the shell makes of it: the appended values win.
	out, err := exec.Command("sh", "-c", got+"\necho \"$GRUB_TIMEOUT|$GRUB_TERMINAL|$GRUB_CMDLINE_LINUX_DEFAULT\"").Output()
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(out)); !strings.HasPrefix(s, "3|serial|biosdevname=0") {
		t.Fatalf("sourced: %q", s)
	}
}

func TestEditDefaultLineEnds(t *testing.T) {
	tail := "GRUB_CMDLINE_LINUX_DEFAULT=\"biosdevname=0 net.ifnames=0 consoleblank=0 rw quiet systemd.show_status=false rd.systemd.show_status=false\"\nGRUB_ENABLE_CRYPTODISK=y\nGRUB_TIMEOUT=0\n"
	for in, want := range map[string]string{
		"":                                 "",
		"A=1":                              "A=1\n",
		"A=1\r\nB=2\r\n":                   "A=1\nB=2\n",
		"A=1\rB=2":                         "A=1\nB=2\n",
		"A=1\n\n":                          "A=1\n\n",
		"GRUB_CMDLINE_LINUX_DEFAULTX=1\nB": "B\n",
		" GRUB_CMDLINE_LINUX_DEFAULT=kept": " GRUB_CMDLINE_LINUX_DEFAULT=kept\n",
		"GRUB_CMDLINE_LINUX=\"a\"\n":       "GRUB_CMDLINE_LINUX=\"a\"\n",
	} {
		if got := EditDefault(in, Defaults{Quiet: true}); got != want+tail {
			t.Errorf("EditDefault(%q) = %q, want %q", in, got, want+tail)
		}
	}
	// Idempotent apart from the appended lines piling up, as in vmdb2.
	once := EditDefault("", Defaults{})
	if twice := EditDefault(once, Defaults{}); !strings.HasPrefix(twice, "GRUB_ENABLE_CRYPTODISK=y\nGRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX_DEFAULT=") {
		t.Errorf("second edit: %q", twice)
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
	if err := InstallEFI(dir, img, "s390x"); err == nil || !strings.Contains(err.Error(), `unknown`) {
		t.Errorf("s390x: %v", err)
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
