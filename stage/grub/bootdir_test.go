package grub

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/canary"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// fixtureTree makes a target tree with what grub-install copies and what
// it leaves out (fdt.lst, kernel.img, other packages' .mo files, the
// other fonts, a locale without GRUB's catalogue).
func fixtureTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range map[string]string{
		"usr/lib/grub/i386-pc/ext2.mod":                    "mod ext2",
		"usr/lib/grub/i386-pc/normal.mod":                  "mod normal",
		"usr/lib/grub/i386-pc/moddep.lst":                  "deps",
		"usr/lib/grub/i386-pc/command.lst":                 "cmds",
		"usr/lib/grub/i386-pc/fs.lst":                      "fs",
		"usr/lib/grub/i386-pc/partmap.lst":                 "pm",
		"usr/lib/grub/i386-pc/parttool.lst":                "pt",
		"usr/lib/grub/i386-pc/video.lst":                   "video",
		"usr/lib/grub/i386-pc/crypto.lst":                  "crypto",
		"usr/lib/grub/i386-pc/terminal.lst":                "term",
		"usr/lib/grub/i386-pc/fdt.lst":                     "not copied",
		"usr/lib/grub/i386-pc/modinfo.sh":                  "grub_modinfo_target_cpu=i386",
		"usr/lib/grub/i386-pc/efiemu32.o":                  "efiemu32",
		"usr/lib/grub/i386-pc/efiemu64.o":                  "efiemu64",
		"usr/lib/grub/i386-pc/boot.img":                    "boot",
		"usr/lib/grub/i386-pc/kernel.img":                  "not copied",
		"usr/lib/grub/i386-pc/config.h":                    "not copied",
		"usr/lib/grub/x86_64-efi/fat.mod":                  "mod fat",
		"usr/lib/grub/x86_64-efi/moddep.lst":               "deps",
		"usr/lib/grub/x86_64-efi/modinfo.sh":               "grub_modinfo_target_cpu=x86_64",
		"usr/share/locale/de/LC_MESSAGES/grub.mo":          "de",
		"usr/share/locale/pt_BR/LC_MESSAGES/grub.mo":       "pt_BR",
		"usr/share/locale/fr/LC_MESSAGES/dpkg.mo":          "not copied",
		"usr/share/grub/unicode.pf2":                       "font",
		"usr/share/grub/ascii.pf2":                         "not copied",
		"usr/share/grub/themes/starfield/theme.txt":        "theme",
		"usr/share/grub/themes/starfield/icons/debian.png": "png",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "usr/share/locale/es/LC_MESSAGES"), 0o755)
	return root
}

func dsts(files []BootFile) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Dst)
	}
	return out
}

// TestBootDirFiles: the list of files is grub-install's (GRUB 2.06,
// compared with bookworm's grub-install --target=i386-pc): every module,
// the data files, boot.img for i386-pc, GRUB's catalogues as
// locale/<lang>.mo, unicode.pf2, the starfield theme when installed.
func TestBootDirFiles(t *testing.T) {
	root := fixtureTree(t)
	got, err := BootDirFiles(root, "i386-pc")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"fonts/unicode.pf2",
		"i386-pc/boot.img", "i386-pc/command.lst", "i386-pc/crypto.lst", "i386-pc/efiemu32.o", "i386-pc/efiemu64.o",
		"i386-pc/ext2.mod", "i386-pc/fs.lst", "i386-pc/moddep.lst", "i386-pc/modinfo.sh", "i386-pc/normal.mod",
		"i386-pc/partmap.lst", "i386-pc/parttool.lst", "i386-pc/terminal.lst", "i386-pc/video.lst",
		"locale/de.mo", "locale/pt_BR.mo",
		"themes/starfield/icons/debian.png", "themes/starfield/theme.txt",
	}
	if !reflect.DeepEqual(dsts(got), want) {
		t.Errorf("i386-pc:\n got %q\nwant %q", dsts(got), want)
	}
	for _, f := range got {
		if f.Dst == "locale/pt_BR.mo" && f.Src != "/usr/share/locale/pt_BR/LC_MESSAGES/grub.mo" {
			t.Errorf("pt_BR.mo from %s", f.Src)
		}
	}
	got, err = BootDirFiles(root, "x86_64-efi")
	if err != nil {
		t.Fatal(err)
	}
	if d := strings.Join(dsts(got), " "); !strings.HasPrefix(d, "fonts/unicode.pf2 locale/de.mo locale/pt_BR.mo themes/starfield/") ||
		strings.Contains(d, "boot.img") || strings.Contains(d, "efiemu") {
		t.Errorf("x86_64-efi: %s", d)
	}
	if got, err := BootDirFiles(filepath.Join(root, "usr/share"), "i386-pc"); err == nil {
		t.Errorf("no /usr/lib/grub/i386-pc: %q, no error", dsts(got))
	}
}

// TestBuildBIOSBootDir: BuildBIOS leaves /boot/grub as grub-install does,
// with core.img and load.cfg besides the copies.
func TestBuildBIOSBootDir(t *testing.T) {
	root := fixtureTree(t)
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/grub-mkimage"), nil, 0o755)
	fr := &fakeRun{plant: func(work string) {
		os.WriteFile(filepath.Join(work, "core.img"), []byte("core"), 0o644)
		os.WriteFile(filepath.Join(work, "boot.img"), []byte("boot"), 0o644)
	}}
	if _, _, err := BuildBIOS(t.Context(), Target{Root: root, Run: fr.run}, confRoot); err != nil {
		t.Fatal(err)
	}
	grubDir := filepath.Join(root, "boot/grub")
	for p, want := range map[string]string{"i386-pc/core.img": "core", "i386-pc/boot.img": "boot", "i386-pc/ext2.mod": "mod ext2",
		"locale/de.mo": "de", "fonts/unicode.pf2": "font", "themes/starfield/icons/debian.png": "png"} {
		if b, err := os.ReadFile(filepath.Join(grubDir, p)); err != nil || string(b) != want {
			t.Errorf("/boot/grub/%s: %q, %v; want %q", p, b, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(grubDir, "i386-pc/load.cfg")); err != nil || !strings.Contains(string(b), "search --no-floppy --fs-uuid --set=root") {
		t.Errorf("load.cfg: %q, %v", b, err)
	}
	for _, p := range []string{"i386-pc/fdt.lst", "i386-pc/kernel.img", "locale/fr.mo", "locale/es.mo", "fonts/ascii.pf2"} {
		if _, err := os.Lstat(filepath.Join(grubDir, p)); err == nil {
			t.Errorf("/boot/grub/%s exists; grub-install does not copy it", p)
		}
	}
	if st, err := os.Stat(filepath.Join(grubDir, "i386-pc/ext2.mod")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("ext2.mod: %v %v", st, err)
	}
}

// TestBootDirFilesConfined: links in the target's font, locale, theme
// and module directories lead to the target's own files, never the
// host's; and none are written through a link in /boot/grub.
func TestBootDirFilesConfined(t *testing.T) {
	for _, trap := range canary.Traps {
		for _, p := range []string{"usr/share/grub/unicode.pf2", "usr/share/locale/xx/LC_MESSAGES/grub.mo",
			"usr/share/grub/themes/starfield/icons/x.png", "usr/lib/grub/i386-pc/x.mod", "boot/grub/fonts/unicode.pf2"} {
			t.Run(string(trap)+"/"+p, func(t *testing.T) {
				host := canary.New(t, "LC_MESSAGES/grub.mo", "theme.txt", "x.mod")
				root := fixtureTree(t)
				os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
				os.WriteFile(filepath.Join(root, "usr/bin/grub-mkimage"), nil, 0o755)
				host.Plant(t, root, p, trap)
				host.Record(t)
				fr := &fakeRun{plant: func(work string) {
					os.WriteFile(filepath.Join(work, "core.img"), []byte("core"), 0o644)
					os.WriteFile(filepath.Join(work, "boot.img"), []byte("boot"), 0o644)
				}}
				_, _, err := BuildBIOS(t.Context(), Target{Root: root, Run: fr.run}, confRoot)
				t.Logf("BuildBIOS: %v", err)
				host.NotInTree(t, root)
				host.Check(t)
			})
		}
	}
}

// TestBuildEFIAndIEEE1275BootDir: for x86_64-efi /boot/grub gets core.efi
// and grub.efi (grub-install's image with an empty prefix), for
// powerpc-ieee1275 core.elf and its copy /boot/grub/grub.
func TestBuildEFIAndIEEE1275BootDir(t *testing.T) {
	root := fixtureTree(t)
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/grub-mkimage"), nil, 0o755)
	os.MkdirAll(filepath.Join(root, "usr/lib/grub/powerpc-ieee1275"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/grub/powerpc-ieee1275/ext2.mod"), []byte("ppc ext2"), 0o644)
	elf := append([]byte("\x7fELF\x01\x02\x01"), make([]byte, 60)...)
	elf[18], elf[19] = 0, 20 // EM_PPC
	var plain string
	fr := &fakeRun{plant: func(work string) {
		os.WriteFile(filepath.Join(work, "core.img"), elf, 0o644)
		os.WriteFile(filepath.Join(work, "grub.efi"), []byte("MZ plain"), 0o644)
	}}
	tgt := Target{Root: root, Run: func(ctx context.Context, c userns.Cmd) error {
		for _, e := range c.Env {
			if v, ok := strings.CutPrefix(e, "PLAIN="); ok {
				plain = v
			}
		}
		return fr.run(ctx, c)
	}}
	if _, err := BuildEFI(t.Context(), tgt, confRoot, "amd64"); err != nil {
		t.Fatal(err)
	}
	if plain != "grub.efi" {
		t.Errorf("x86_64-efi: PLAIN=%q, want grub.efi", plain)
	}
	if _, err := BuildIEEE1275(t.Context(), tgt, confRoot); err != nil {
		t.Fatal(err)
	}
	if plain != "" {
		t.Errorf("powerpc-ieee1275: PLAIN=%q, want none", plain)
	}
	grubDir := filepath.Join(root, "boot/grub")
	for p, want := range map[string]string{"x86_64-efi/core.efi": string(elf), "x86_64-efi/grub.efi": "MZ plain", "x86_64-efi/fat.mod": "mod fat",
		"powerpc-ieee1275/core.elf": string(elf), "grub": string(elf), "powerpc-ieee1275/ext2.mod": "ppc ext2"} {
		if b, err := os.ReadFile(filepath.Join(grubDir, p)); err != nil || string(b) != want {
			t.Errorf("/boot/grub/%s: %q, %v; want %q", p, b, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(grubDir, "powerpc-ieee1275/grub.efi")); err == nil {
		t.Error("grub.efi for powerpc-ieee1275")
	}
}
