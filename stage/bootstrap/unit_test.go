package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCheckEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := CheckEmpty(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing directory: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := CheckEmpty(dir); err != nil {
		t.Errorf("only lost+found: %v", err)
	}
	for _, n := range []string{"usr", "etc", "it's"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := CheckEmpty(dir)
	want := "debootstrap target " + dir + ` is a not an empty directory: ['etc', "it's", 'usr']`
	if err == nil || err.Error() != want {
		t.Errorf("CheckEmpty = %v\nwant %s", err, want)
	}
}

func TestPyRepr(t *testing.T) {
	for in, want := range map[string]string{
		"a": "'a'", `a'b`: `"a'b"`, `a'"b`: `'a\'"b'`, "a\\b": `'a\\b'`, "a\nb": `'a\nb'`, "\x01": `'\x01'`,
	} {
		if got := pyRepr(in); got != want {
			t.Errorf("pyRepr(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNormalized(t *testing.T) {
	dir := t.TempDir()
	o, err := Options{Suite: "bookworm", Mirror: "http://m", Target: dir}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := HostArch()
	if o.Arch != host || o.Variant != "-" || !reflect.DeepEqual(o.Components, []string{"main"}) || o.Engine != DefaultEngine || o.CacheDir == "" {
		t.Errorf("defaults: %+v", o)
	}
	o, err = Options{Suite: "bookworm", Mirror: "http://m", Target: dir, CacheDir: "-"}.normalized()
	if err != nil || o.CacheDir != "" {
		t.Errorf("CacheDir \"-\": %q, %v", o.CacheDir, err)
	}
	bad := map[string]Options{
		"suite and the mirror": {Mirror: "http://m", Target: dir},
		"no target":            {Suite: "s", Mirror: "http://m"},
		"unknown variant":      {Suite: "s", Mirror: "http://m", Target: dir, Variant: "fakechroot"},
		"bad component":        {Suite: "s", Mirror: "http://m", Target: dir, Components: []string{"main,contrib"}},
		"needs a keyring":      {Suite: "s", Mirror: "http://m", Target: dir, InstallKeyring: true},
		"keyring":              {Suite: "s", Mirror: "http://m", Target: dir, Keyring: filepath.Join(dir, "nope.gpg")},
		"outside the target":   {Suite: "s", Mirror: "http://m", Target: dir, DeviceManifest: filepath.Join(dir, "dev.json")},
		"unknown engine":       {Suite: "s", Mirror: "http://m", Target: dir, Engine: "cdebootstrap"},
	}
	for want, o := range bad {
		if _, err := o.normalized(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want one containing %q", o, err, want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2"}, nil, []string{"B=3", "C=4", "A=5"})
	if want := []string{"A=5", "B=3", "C=4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
}

// fakeBinfmt points CheckArch at an empty binfmt_misc directory (with a
// register file when mounted) and a binfmt.d directory with qemu-aarch64's
// registration when installed, and hides arch-test, so that the host's
// handlers do not matter.
func fakeBinfmt(t *testing.T, mounted, installed bool) (dir, conf string) {
	t.Helper()
	dir, confDir := t.TempDir(), t.TempDir()
	old, oldConf, oldLook := binfmtDir, binfmtConfDir, lookArchTest
	binfmtDir, binfmtConfDir = dir, confDir
	lookArchTest = func() (string, error) { return "", os.ErrNotExist }
	t.Cleanup(func() { binfmtDir, binfmtConfDir, lookArchTest = old, oldConf, oldLook })
	if mounted {
		if err := os.WriteFile(filepath.Join(dir, "register"), nil, 0o200); err != nil {
			t.Fatal(err)
		}
	}
	conf = filepath.Join(confDir, "qemu-aarch64.conf")
	if installed {
		if err := os.WriteFile(conf, []byte(":qemu-aarch64:M::\\x7fELF:\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, conf
}

// TestForeignArch checks that a foreign architecture the host cannot run
// is refused before anything is done, with the commands that register
// that architecture's handler and no other (whatever handlers the host
// has: the binfmt_misc directory is a fake one).
func TestForeignArch(t *testing.T) {
	dir, conf := fakeBinfmt(t, true, true)
	target := filepath.Join(t.TempDir(), "target")
	err := Bootstrap(context.Background(), Options{
		Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Arch: "arm64",
		Target: target, DeviceManifest: filepath.Join(t.TempDir(), "dev.json"),
	})
	t.Logf("error: %v", err)
	if err == nil {
		t.Fatal("Bootstrap of arm64 succeeded on a host without its binfmt_misc handler")
	}
	register := "grep -v '^#' " + conf + " > " + filepath.Join(dir, "register")
	if !strings.HasSuffix(err.Error(), "as root: "+register) {
		t.Errorf("the error does not end with the one fix %q", register)
	}
	for _, unwanted := range []string{"binfmt-support", "apt-get install", "mount -t"} {
		if strings.Contains(err.Error(), unwanted) {
			t.Errorf("the error mentions %s, which is not needed here", unwanted)
		}
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("the target was created before the architecture was checked")
	}
	if err := CheckArch("no-such-arch"); err == nil {
		t.Error("CheckArch accepted an unknown architecture")
	}
	host, _ := HostArch()
	if err := CheckArch(host); err != nil {
		t.Errorf("CheckArch(host %s): %v", host, err)
	}
}

// TestBinfmtEntry checks the binfmt_misc reading with fake entries, and
// the fix given for each state.
func TestBinfmtEntry(t *testing.T) {
	dir, conf := fakeBinfmt(t, false, false)
	entry := filepath.Join(dir, "qemu-aarch64")
	register := "grep -v '^#' " + conf + " > " + filepath.Join(dir, "register")
	write := func(s string) {
		if err := os.WriteFile(entry, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(state string, want ...string) {
		t.Helper()
		err := CheckArch("arm64")
		if err == nil {
			t.Fatalf("%s: accepted", state)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nlacks %q", state, err, w)
			}
		}
	}
	check("nothing installed or mounted", "no binfmt_misc entry",
		"as root: apt-get install --no-install-recommends qemu-user-static; mount -t binfmt_misc binfmt_misc "+dir+"; "+register)
	fakeBinfmt(t, true, true)
	dir, conf = binfmtDir, filepath.Join(binfmtConfDir, "qemu-aarch64.conf")
	entry = filepath.Join(dir, "qemu-aarch64")
	register = "grep -v '^#' " + conf + " > " + filepath.Join(dir, "register")
	check("installed, not registered", "no binfmt_misc entry", "as root: "+register)
	write("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
	check("disabled", "disabled", "as root: echo 1 > "+entry)
	write("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\n")
	check("without F", "F (fix binary)", "as root: echo -1 > "+entry+"; "+register)
	write("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
	if err := CheckArch("arm64"); err != nil {
		t.Errorf("good entry: %v", err)
	}
}

// TestForeignArchFixes: for each architecture `make deps` registers, an
// unregistered handler is refused with the one line that registers that
// architecture's handler (armhf and armel share qemu-arm's), and a
// registered one with the F flag passes; the host's own handlers do not
// matter (fake binfmt_misc directory).
func TestForeignArchFixes(t *testing.T) {
	for arch, q := range map[string]string{"arm64": "aarch64", "armhf": "arm", "armel": "arm", "riscv64": "riscv64", "ppc64el": "ppc64le"} {
		t.Run(arch, func(t *testing.T) {
			dir, _ := fakeBinfmt(t, true, false)
			for _, other := range makeBinfmtArches {
				if err := os.WriteFile(filepath.Join(binfmtConfDir, "qemu-"+other+".conf"), []byte(":qemu-"+other+":M::x:y:/i:OPF\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckArch(arch)
			register := "as root: grep -v '^#' " + filepath.Join(binfmtConfDir, "qemu-"+q+".conf") + " > " + filepath.Join(dir, "register")
			if err == nil || !strings.HasSuffix(err.Error(), register) {
				t.Fatalf("CheckArch(%s) = %v\nwant it to end with %q", arch, err, register)
			}
			if strings.Count(err.Error(), ".conf") != 1 || strings.Contains(err.Error(), "binfmt-support") {
				t.Errorf("the fix registers more than %s: %v", q, err)
			}
			if err := os.WriteFile(filepath.Join(dir, "qemu-"+q), []byte("enabled\ninterpreter /usr/libexec/qemu-binfmt/"+q+"-binfmt-P\nflags: POCF\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := CheckArch(arch); err != nil {
				t.Errorf("registered: %v", err)
			}
		})
	}
}

// TestMmdebstrapArgvForeign: for a foreign architecture mmdebstrap is
// told to skip its own emulation check (which needs arch-test), and only
// then: CheckArch has done it.
func TestMmdebstrapArgvForeign(t *testing.T) {
	host, _ := HostArch()
	foreign := "arm64"
	if host == foreign {
		foreign = "amd64"
	}
	o := Options{Suite: "bookworm", Target: "/t", Mirror: "http://m", Variant: "minbase", Components: []string{"main"}}
	for arch, want := range map[string]bool{host: false, foreign: true, "armel": host != "armel"} {
		o.Arch = arch
		argv := mmdebstrapArgv(o)
		if got := slices.Contains(argv, "--skip=check/qemu"); got != want {
			t.Errorf("%s on %s: --skip=check/qemu %v, want %v: %q", arch, host, got, want, argv)
		}
		if !slices.Contains(argv, "--architectures="+arch) || argv[len(argv)-3] != "bookworm" {
			t.Errorf("%s: %q", arch, argv)
		}
	}
}

// TestDebootstrapArgvExclude: vmdb2 0.41's exclude becomes debootstrap's
// --exclude, before the suite.
func TestDebootstrapArgvExclude(t *testing.T) {
	argv := strings.Join(debootstrapArgv(Options{Suite: "bookworm", Target: "/t", Mirror: "http://m", Arch: "amd64", Variant: "-",
		Components: []string{"main"}, Include: []string{"less"}, Exclude: []string{"nano", "vim-tiny"}}), " ")
	want := "debootstrap --arch=amd64 --variant=- --components=main --include=less --exclude=nano,vim-tiny bookworm /t http://m"
	if argv != want {
		t.Errorf("argv:\n%s\nwant\n%s", argv, want)
	}
}
