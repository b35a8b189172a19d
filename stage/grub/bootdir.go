package grub

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage"
)

// BootDir is GRUB's directory in the target, where grub-install puts its
// files and grub-mkconfig writes grub.cfg.
const BootDir = "/boot/grub"

// BootFile is one file grub-install copies into /boot/grub: Src is its
// path in the target, Dst its path relative to /boot/grub.
type BootFile struct {
	Src, Dst string
}

// platformData are the files of /usr/lib/grub/<platform> grub-install
// copies besides the modules (its pkglib_DATA list; each one that
// exists: efiemu*.o are only in i386-pc).
var platformData = []string{"efiemu32.o", "efiemu64.o", "moddep.lst", "command.lst", "fs.lst",
	"partmap.lst", "parttool.lst", "video.lst", "crypto.lst", "terminal.lst", "modinfo.sh"}

// The sources of the platform-independent files grub-install copies with
// its default --locales, --fonts and --themes.
const (
	localeDir = "/usr/share/locale"
	fontFile  = "/usr/share/grub/unicode.pf2"
	themeDir  = "/usr/share/grub/themes/starfield"
)

// BootDirFiles lists, from the target tree at root, the files grub-install
// (grub_install_copy_files, GRUB 2.06) copies into /boot/grub for
// platform (i386-pc, x86_64-efi, powerpc-ieee1275, …), sorted by Dst:
//   - <platform>/*.mod and the platformData files from
//     /usr/lib/grub/<platform>, and for i386-pc boot.img;
//   - locale/<lang>.mo from /usr/share/locale/<lang>/LC_MESSAGES/grub.mo;
//   - fonts/unicode.pf2 from /usr/share/grub/unicode.pf2;
//   - themes/starfield/… when /usr/share/grub/themes/starfield/theme.txt
//     exists (package grub-theme-starfield).
//
// Every path is resolved inside the target; only regular files are
// listed (a link is followed inside the target, as grub-install in a
// chroot would).
func BootDirFiles(root, platform string) ([]BootFile, error) {
	r, err := stage.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("grub: %w", err)
	}
	defer r.Close()
	lib := "/usr/lib/grub/" + platform
	var files []BootFile
	mods, err := listDir(r, lib)
	if err != nil {
		return nil, fmt.Errorf("grub: the target's %s: %w", lib, err)
	}
	for _, name := range mods {
		if strings.HasSuffix(name, ".mod") && isRegular(r, lib+"/"+name) {
			files = append(files, BootFile{lib + "/" + name, platform + "/" + name})
		}
	}
	extra := platformData
	if platform == "i386-pc" {
		extra = append(append([]string{}, extra...), "boot.img")
	}
	for _, name := range extra {
		if isRegular(r, lib+"/"+name) {
			files = append(files, BootFile{lib + "/" + name, platform + "/" + name})
		}
	}
	langs, _ := listDir(r, localeDir) // no locales: none copied
	for _, lang := range langs {
		if mo := localeDir + "/" + lang + "/LC_MESSAGES/grub.mo"; isRegular(r, mo) {
			files = append(files, BootFile{mo, "locale/" + lang + ".mo"})
		}
	}
	if isRegular(r, fontFile) {
		files = append(files, BootFile{fontFile, "fonts/unicode.pf2"})
	}
	if isRegular(r, themeDir+"/theme.txt") {
		theme, err := treeFiles(r, themeDir, "themes/starfield", 0)
		if err != nil {
			return nil, err
		}
		files = append(files, theme...)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Dst < files[j].Dst })
	return files, nil
}

// maxThemeDepth bounds the directories followed in a theme.
const maxThemeDepth = 8

// treeFiles lists the regular files under dir, recursively, as
// grub-install's copy_all copies a theme.
func treeFiles(r *stage.Root, dir, dst string, depth int) ([]BootFile, error) {
	if depth > maxThemeDepth {
		return nil, fmt.Errorf("grub: %s is nested more than %d directories deep", dir, maxThemeDepth)
	}
	names, err := listDir(r, dir)
	if err != nil {
		return nil, fmt.Errorf("grub: the target's %s: %w", dir, err)
	}
	var files []BootFile
	for _, name := range names {
		src := dir + "/" + name
		st, err := r.Stat(src)
		switch {
		case err != nil:
		case st.Mode().IsRegular():
			files = append(files, BootFile{src, dst + "/" + name})
		case st.IsDir():
			sub, err := treeFiles(r, src, dst+"/"+name, depth+1)
			if err != nil {
				return nil, err
			}
			files = append(files, sub...)
		}
	}
	return files, nil
}

// listDir returns the names in the target's directory p, resolved inside
// the target. The names are only ever used as path components resolved
// inside the target again.
func listDir(r *stage.Root, p string) ([]string, error) {
	dir, err := r.ResolveDir(p)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(r.Dir(), dir))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

func isRegular(r *stage.Root, p string) bool {
	st, err := r.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// installBootDir gives the target's /boot/grub what grub-install leaves
// there for platform: the BootDirFiles copies, and the made files (paths
// relative to /boot/grub: the core image, load.cfg, …). Directories are
// 0755 and files 0644, as grub-install makes them.
func installBootDir(root, platform string, made map[string][]byte) error {
	files, err := BootDirFiles(root, platform)
	if err != nil {
		return err
	}
	r, err := stage.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	defer r.Close()
	for _, dir := range []string{platform, "locale", "fonts"} {
		if err := r.Mkdirs(BootDir+"/"+dir, 0o755); err != nil {
			return fmt.Errorf("grub: %w", err)
		}
	}
	put := func(dst string, data []byte) error {
		p := BootDir + "/" + dst
		if err := r.Mkdirs(path.Dir(p), 0o755); err != nil {
			return fmt.Errorf("grub: %w", err)
		}
		if err := r.PutFile(p, data, 0o644); err != nil {
			return fmt.Errorf("grub: %w", err)
		}
		return nil
	}
	for _, f := range files {
		data, err := r.ReadRegular(f.Src, maxOutput)
		if err != nil {
			return fmt.Errorf("grub: copying the target's %s to %s/%s: %w", f.Src, BootDir, f.Dst, err)
		}
		if err := put(f.Dst, data); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(made))
	for n := range made {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := put(n, made[n]); err != nil {
			return err
		}
	}
	return nil
}

// coreName is the name grub-install gives the core image in
// /boot/grub/<platform>.
func coreName(platform string) string {
	switch {
	case platform == "i386-pc":
		return "core.img"
	case strings.HasSuffix(platform, "-efi"):
		return "core.efi"
	}
	return "core.elf"
}
