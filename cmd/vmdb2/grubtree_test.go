package main

import (
	"bytes"
	"os"
	"sort"
	"strings"
	"testing"
)

// debugfsNames lists the regular files of the directory dir of the ext
// filesystem at offset in img.
func debugfsNames(t *testing.T, img string, offset int64, dir string) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(debugfs(t, img, offset, "ls -p "+dir), "\n") {
		// /inode/mode/uid/gid/name/size/
		f := strings.Split(line, "/")
		if len(f) >= 7 && strings.HasPrefix(f[2], "100") {
			names = append(names, f[5])
		}
	}
	sort.Strings(names)
	return names
}

// grubPlatformData are the files of /usr/lib/grub/<platform> that
// grub-install copies besides the modules (those that exist).
var grubPlatformData = []string{"efiemu32.o", "efiemu64.o", "moddep.lst", "command.lst", "fs.lst",
	"partmap.lst", "parttool.lst", "video.lst", "crypto.lst", "terminal.lst", "modinfo.sh"}

// checkGrubTree checks that the image's GRUB directory (grubDir, on the
// filesystem at bootOff; the target's /usr on the one at rootOff) holds
// what grub-install leaves there for platform, no more and no less: the
// modules and data files of the target's /usr/lib/grub/<platform>, the
// core image (for i386-pc the very one in the MBR gap, and boot.img),
// load.cfg, grubenv, fonts/unicode.pf2 and the locales.
func checkGrubTree(t *testing.T, img string, bootOff, rootOff int64, grubDir, platform string) {
	t.Helper()
	lib := debugfsNames(t, img, rootOff, "/usr/lib/grub/"+platform)
	want := []string{"load.cfg"}
	for _, n := range lib {
		if strings.HasSuffix(n, ".mod") {
			want = append(want, n)
		}
	}
	for _, n := range grubPlatformData {
		if i := sort.SearchStrings(lib, n); i < len(lib) && lib[i] == n {
			want = append(want, n)
		}
	}
	switch platform {
	case "i386-pc":
		want = append(want, "boot.img", "core.img")
	case "x86_64-efi":
		want = append(want, "core.efi", "grub.efi")
	}
	sort.Strings(want)
	if got := debugfsNames(t, img, bootOff, grubDir+"/"+platform); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s/%s:\n got %q\nwant %q", grubDir, platform, got, want)
	}
	if env := debugfs(t, img, bootOff, "cat "+grubDir+"/grubenv"); len(env) != 1024 || !strings.HasPrefix(env, "# GRUB Environment Block\n") {
		t.Errorf("grubenv (%d bytes) is not an empty GRUB environment block: %.80q", len(env), env)
	}
	if font := debugfs(t, img, bootOff, "cat "+grubDir+"/fonts/unicode.pf2"); font != debugfs(t, img, rootOff, "cat /usr/share/grub/unicode.pf2") || len(font) < 1<<20 {
		t.Errorf("fonts/unicode.pf2 (%d bytes) is not the target's /usr/share/grub/unicode.pf2", len(font))
	}
	if mo := debugfs(t, img, bootOff, "cat "+grubDir+"/locale/de.mo"); mo == "" || mo != debugfs(t, img, rootOff, "cat /usr/share/locale/de/LC_MESSAGES/grub.mo") {
		t.Errorf("locale/de.mo (%d bytes) is not the target's GRUB catalogue", len(mo))
	}
	switch platform {
	case "i386-pc":
		// The copy in the MBR gap (from sector 1) differs only in its
		// first sector, diskboot.img's block list.
		core := []byte(debugfs(t, img, bootOff, "cat "+grubDir+"/i386-pc/core.img"))
		gap := make([]byte, len(core))
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(gap, 512)
		f.Close()
		if err != nil || len(core) < 1024 || !bytes.Equal(gap[512:], core[512:]) {
			t.Errorf("i386-pc/core.img (%d bytes) is not the core.img in the MBR gap (%v)", len(core), err)
		}
		if boot := debugfs(t, img, bootOff, "cat "+grubDir+"/i386-pc/boot.img"); boot != debugfs(t, img, rootOff, "cat /usr/lib/grub/i386-pc/boot.img") {
			t.Errorf("i386-pc/boot.img is not the target's")
		}
	case "x86_64-efi":
		for _, n := range []string{"core.efi", "grub.efi"} {
			if b := debugfs(t, img, bootOff, "cat "+grubDir+"/x86_64-efi/"+n); !strings.HasPrefix(b, "MZ") {
				t.Errorf("x86_64-efi/%s is not a PE image", n)
			}
		}
	}
}
