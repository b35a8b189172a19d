package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
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

// TestForeignArch checks that a foreign architecture the host cannot run
// is refused before anything is done, with what to install.
func TestForeignArch(t *testing.T) {
	if err := CheckArch("arm64"); err == nil {
		t.Skip("this host runs arm64 programs (binfmt_misc): cannot test the refusal")
	}
	target := filepath.Join(t.TempDir(), "target")
	err := Bootstrap(context.Background(), Options{
		Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Arch: "arm64",
		Target: target, DeviceManifest: filepath.Join(t.TempDir(), "dev.json"),
	})
	t.Logf("error: %v", err)
	if err == nil {
		t.Fatal("Bootstrap of arm64 succeeded on a host without qemu-user")
	}
	for _, want := range []string{"arm64", "qemu-user-static", "binfmt-support"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s", want)
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

// TestBinfmtEntry checks the binfmt_misc reading with fake entries.
func TestBinfmtEntry(t *testing.T) {
	dir := t.TempDir()
	old, oldLook := binfmtDir, lookArchTest
	binfmtDir = dir
	lookArchTest = func() (string, error) { return "", os.ErrNotExist }
	defer func() { binfmtDir, lookArchTest = old, oldLook }()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "qemu-aarch64"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckArch("arm64"); err == nil || !strings.Contains(err.Error(), "no binfmt_misc entry") {
		t.Errorf("missing entry: %v", err)
	}
	write("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
	if err := CheckArch("arm64"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("disabled entry: %v", err)
	}
	write("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\n")
	if err := CheckArch("arm64"); err == nil || !strings.Contains(err.Error(), "F (fix binary)") {
		t.Errorf("entry without F: %v", err)
	}
	write("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
	if err := CheckArch("arm64"); err != nil {
		t.Errorf("good entry: %v", err)
	}
}
