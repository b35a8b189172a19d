package grub

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeTree writes files (path in the target -> content) under a new
// directory and returns it.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	sbShim = "usr/lib/shim/shimx64.efi.signed"
	sbMM   = "usr/lib/shim/mmx64.efi.signed"
	sbFB   = "usr/lib/shim/fbx64.efi.signed"
	sbCSV  = "usr/lib/shim/BOOTX64.CSV"
	sbGrub = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
)

var sbRoot = Layout{{UUID: "0f2c6a8e-4b1d-4c3e-9a7f-5d6e7f809a1b", Type: "ext4", Table: "gpt", Partition: 2}}

// layout returns path -> content of a layout.
func layout(t *testing.T, s *SignedEFI) map[string]string {
	t.Helper()
	files, err := SecureBootLayout(s, sbRoot)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	var paths []string
	for _, f := range files {
		m[f.Path] = string(f.Data)
		paths = append(paths, f.Path)
	}
	if !sortedStrings(paths) {
		t.Errorf("layout not sorted by path: %v", paths)
	}
	return m
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

const wantSBConfig = "search.fs_uuid 0f2c6a8e-4b1d-4c3e-9a7f-5d6e7f809a1b root hd0,gpt2 \n" +
	"set prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"

func TestSignedPaths(t *testing.T) {
	shim, mm, fb, csv, g, err := SignedPaths("amd64")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{shim, mm, fb, csv, g}
	want := []string{"/" + sbShim, "/" + sbMM, "/" + sbFB, "/" + sbCSV, "/" + sbGrub}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("amd64: %q, want %q", got, want)
	}
	if _, _, _, _, g, _ := SignedPaths("arm64"); g != "/usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed" {
		t.Errorf("arm64 GRUB: %s", g)
	}
	if _, _, _, _, _, err := SignedPaths("ppc64el"); err == nil {
		t.Error("ppc64el has no EFI; want an error")
	}
}

func TestSecureBootFullLayout(t *testing.T) {
	root := fakeTree(t, map[string]string{
		sbShim: "MZshim", sbMM: "MZmm", sbFB: "MZfb", sbCSV: "s\x00h\x00csv", sbGrub: "MZgrub",
		"usr/lib/grub/x86_64-efi/linux.mod": "module",
	})
	s, err := FindSecureBoot(root, "amd64")
	if err != nil || s == nil {
		t.Fatalf("FindSecureBoot: %v, %v", s, err)
	}
	got := layout(t, s)
	want := map[string]string{
		"EFI/debian/shimx64.efi": "MZshim",
		"EFI/debian/grubx64.efi": "MZgrub",
		"EFI/debian/mmx64.efi":   "MZmm",
		"EFI/debian/fbx64.efi":   "MZfb",
		"EFI/debian/BOOTX64.CSV": "s\x00h\x00csv",
		"EFI/debian/grub.cfg":    wantSBConfig,
		"EFI/BOOT/BOOTX64.EFI":   "MZshim",
		"EFI/BOOT/grubx64.efi":   "MZgrub",
		"EFI/BOOT/mmx64.efi":     "MZmm",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layout:\n got %q\nwant %q", got, want)
	}
}

func TestSecureBootWithoutHelpers(t *testing.T) {
	// shim-signed without shim-helpers-amd64-signed: no mm, no fb, no CSV.
	s, err := FindSecureBoot(fakeTree(t, map[string]string{sbShim: "MZshim", sbGrub: "MZgrub"}), "amd64")
	if err != nil || s == nil {
		t.Fatalf("FindSecureBoot: %v, %v", s, err)
	}
	got := layout(t, s)
	want := map[string]string{
		"EFI/debian/shimx64.efi": "MZshim",
		"EFI/debian/grubx64.efi": "MZgrub",
		"EFI/debian/grub.cfg":    wantSBConfig,
		"EFI/BOOT/BOOTX64.EFI":   "MZshim",
		"EFI/BOOT/grubx64.efi":   "MZgrub",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layout:\n got %q\nwant %q", got, want)
	}
}

func TestSecureBootGrubWithoutShim(t *testing.T) {
	// As grub-install: the signed GRUB itself on both paths.
	s, err := FindSecureBoot(fakeTree(t, map[string]string{sbGrub: "MZgrub", sbMM: "MZmm"}), "amd64")
	if err != nil || s == nil {
		t.Fatalf("FindSecureBoot: %v, %v", s, err)
	}
	got := layout(t, s)
	want := map[string]string{
		"EFI/debian/grubx64.efi": "MZgrub",
		"EFI/debian/grub.cfg":    wantSBConfig,
		"EFI/BOOT/BOOTX64.EFI":   "MZgrub",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layout:\n got %q\nwant %q", got, want)
	}
}

func TestSecureBootAbsent(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"nothing":       {"usr/lib/grub/x86_64-efi/linux.mod": "module"},
		"shim only":     {sbShim: "MZshim", sbMM: "MZmm"},
		"grub is a dir": {sbGrub + "/x": "y", sbShim: "MZshim"},
	} {
		s, err := FindSecureBoot(fakeTree(t, files), "amd64")
		if err != nil || s != nil {
			t.Errorf("%s: got %+v, %v; want nil, nil (no Secure Boot)", name, s, err)
		}
	}
}

func TestSecureBootSymlinksStayInTarget(t *testing.T) {
	// An absolute link in the target resolves inside the target, never to
	// the host's file of that name.
	host := t.TempDir()
	secret := filepath.Join(host, "grubx64.efi.signed")
	if err := os.WriteFile(secret, []byte("MZhost"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := fakeTree(t, map[string]string{
		sbShim:                   "MZshim",
		"opt/signed/grub.signed": "MZtarget",
	})
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(sbGrub)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(root, sbGrub)); err != nil {
		t.Fatal(err)
	}
	s, err := FindSecureBoot(root, "amd64")
	if err != nil || s != nil {
		t.Fatalf("link to a host path: got %+v, %v; want nil (the path does not exist in the target)", s, err)
	}
	// A link within the target is followed, as the target would.
	os.Remove(filepath.Join(root, sbGrub))
	if err := os.Symlink("/opt/signed/grub.signed", filepath.Join(root, sbGrub)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../"+strings.Repeat("../", 8)+secret, filepath.Join(root, sbMM)); err != nil {
		t.Fatal(err)
	}
	s, err = FindSecureBoot(root, "amd64")
	if err != nil || s == nil {
		t.Fatalf("FindSecureBoot: %v, %v", s, err)
	}
	if string(s.Grub) != "MZtarget" {
		t.Errorf("GRUB through a link in the target: %q", s.Grub)
	}
	if s.MokManager != nil {
		t.Errorf("a relative link climbing out of the target was followed to the host: %q", s.MokManager)
	}
}

func TestSecureBootNotPE(t *testing.T) {
	_, err := FindSecureBoot(fakeTree(t, map[string]string{sbShim: "MZshim", sbGrub: "#!/bin/sh\n"}), "amd64")
	if err == nil || !strings.Contains(err.Error(), "not an EFI executable") {
		t.Errorf("got %v; want an error naming the file that is not an EFI executable", err)
	}
}

func TestSecureBootBadInput(t *testing.T) {
	if _, err := FindSecureBoot(t.TempDir(), "mips64el"); err == nil {
		t.Error("unknown architecture: want an error")
	}
	if _, err := FindSecureBoot(filepath.Join(t.TempDir(), "missing"), "amd64"); err == nil {
		t.Error("missing target tree: want an error")
	}
	if _, err := SecureBootLayout(nil, sbRoot); err == nil {
		t.Error("nothing signed: want an error")
	}
	bad := Layout{sbRoot[0]}
	bad[0].UUID = "x; reboot"
	if _, err := SecureBootLayout(&SignedEFI{Suffix: "x64", Grub: []byte("MZ")}, bad); err == nil {
		t.Error("bad UUID: want an error")
	}
}
