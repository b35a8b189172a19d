package grub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Runner runs one command inside the build's user namespace. nil means
// userns.Run.
type Runner func(ctx context.Context, c userns.Cmd) error

// Target is the tree GRUB is installed into and how commands run in it.
type Target struct {
	// Root is the host path of the target tree (the root tag's directory
	// of the stage).
	Root string
	// Run runs commands in the namespace; nil means userns.Run.
	Run Runner
	// Log receives the output of the tools run; nil discards it (the tail
	// of their error output is kept in errors either way).
	Log io.Writer
}

// grubFS returns the name of GRUB's module (and of grub-probe's
// --target=fs answer) for a Linux filesystem type.
func grubFS(linuxType string) (string, error) {
	switch linuxType {
	case "ext2", "ext3", "ext4":
		return "ext2", nil
	case "vfat", "fat", "fat16", "fat32":
		return "fat", nil
	case "btrfs", "xfs", "f2fs":
		return linuxType, nil
	}
	return "", fmt.Errorf("grub: GRUB cannot read a filesystem of type %q here (ext2/3/4, btrfs, xfs, f2fs or vfat)", linuxType)
}

// BIOSModules are the modules built into core.img besides the partition
// and filesystem modules. They are what grub.cfg from grub-mkconfig needs
// before it can load modules from /boot/grub/i386-pc.
var BIOSModules = []string{"biosdisk", "part_msdos", "part_gpt", "normal", "linux", "search",
	"search_fs_uuid", "configfile", "echo", "test", "serial", "terminal", "gzio", "boot"}

// EFIModules are the modules built into the EFI image besides the
// filesystem module.
var EFIModules = []string{"part_msdos", "part_gpt", "fat", "efi_gop", "all_video", "normal", "linux",
	"search", "search_fs_uuid", "configfile", "echo", "test", "serial", "terminal", "gzio", "boot"}

// EarlyConfig is the configuration embedded in the core images: find the
// filesystem holding /boot/grub by UUID (with hint, e.g. "hd0,msdos1",
// tried first) and set the prefix to grubDir there ("/boot/grub" on the
// root filesystem, "/grub" on a separate /boot); GRUB's normal mode then
// reads $prefix/grub.cfg.
func EarlyConfig(uuid, hint, grubDir string) string {
	h := ""
	if hint != "" {
		h = " --hint=" + hint
	}
	return fmt.Sprintf("search --no-floppy --fs-uuid --set=root%s %s\nset prefix=($root)%s\n", h, uuid, grubDir)
}

// CoreConfig is what a core image needs to find /boot/grub.
type CoreConfig struct {
	// Prefix is the static prefix (-p of grub-mkimage): GRUB's drive of
	// the filesystem holding /boot/grub and /boot/grub's path in it,
	// "(hd0,msdos2)/grub".
	Prefix string
	// Early is the embedded configuration (see EarlyConfig).
	Early string
	// Modules are the modules that read that filesystem: its layers'
	// (lvm) and its filesystem's.
	Modules []string
}

// BootConfig returns the core image configuration for the layout's
// filesystem holding /boot/grub.
func BootConfig(l Layout) (CoreConfig, error) {
	f, dir, err := l.Boot()
	if err != nil {
		return CoreConfig{}, err
	}
	return CoreConfig{Prefix: "(" + f.drive() + ")" + dir, Early: EarlyConfig(f.UUID, f.drive(), dir), Modules: f.modules()}, nil
}

// EFIArch returns the Debian architecture arch if Debian has EFI GRUB
// for it (its grub-mkimage target, package and removable-media file name
// are in the table), else an error saying which architectures have.
func EFIArch(arch string) (debarch.Arch, error) {
	a, ok := debarch.Get(arch)
	if !ok || a.GrubEFI == "" {
		return debarch.Arch{}, fmt.Errorf("grub: Debian has no EFI GRUB for %s (grub: uefi is for %s)", arch, strings.Join(debarch.EFIArches(), ", "))
	}
	return a, nil
}

// workDir is where a host directory is bind-mounted in the namespace to
// pass files in and out.
const workDir = "/run/vmdb2-grub"

var defaultEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive",
}

// runWith runs argv in the target with environment env, the host
// directory work bind-mounted at workDir and extra binds.
func (t Target) runWith(ctx context.Context, work string, env []string, binds []userns.Bind, argv ...string) error {
	run := t.Run
	if run == nil {
		run = userns.Run
	}
	if t.Root == "" {
		return fmt.Errorf("grub: no target tree given")
	}
	var tail tailBuffer
	var out io.Writer = &tail
	if t.Log != nil {
		out = io.MultiWriter(t.Log, &tail)
	}
	c := userns.Cmd{
		Root:    t.Root,
		Argv:    argv,
		Env:     env,
		Virtual: true,
		Binds:   append([]userns.Bind{{Source: work, Target: workDir}}, binds...),
		Stdout:  out,
		Stderr:  out,
	}
	if err := run(ctx, c); err != nil {
		if s := strings.TrimSpace(tail.String()); s != "" {
			return fmt.Errorf("grub: %s in the target: %w: %s", argv[0], err, strings.ReplaceAll(s, "\n", "; "))
		}
		return fmt.Errorf("grub: %s in the target: %w", argv[0], err)
	}
	return nil
}

// needTool checks that the target has a program, for a clearer message
// than "not found" from inside the namespace. The path is looked up inside
// the target, as the namespace will.
func (t Target) needTool(tool, pkg string) error {
	r, err := stage.OpenRoot(t.Root)
	if err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	defer r.Close()
	if _, err := r.Lstat(tool); err != nil {
		return fmt.Errorf("grub: the target has no %s: install %s in it first (the target's own GRUB builds the images, so that they match its modules)", tool, pkg)
	}
	return nil
}

// isDir says whether p is a directory of the target (links followed
// inside it).
func (t Target) isDir(p string) bool {
	r, err := stage.OpenRoot(t.Root)
	if err != nil {
		return false
	}
	defer r.Close()
	st, err := r.Stat(p)
	return err == nil && st.IsDir()
}

// maxOutput bounds what is read back from the work directory: GRUB's
// images are a few MiB at most.
const maxOutput = 64 << 20

// readOutputs reads the named regular files the target's tools left in
// the host directory work. They are the target's doing: a link is
// resolved inside work (so never to a host file) and a FIFO or device is
// refused, not opened.
func readOutputs(work string, names ...string) (map[string][]byte, error) {
	r, err := stage.OpenRoot(work)
	if err != nil {
		return nil, fmt.Errorf("grub: %w", err)
	}
	defer r.Close()
	out := map[string][]byte{}
	for _, n := range names {
		b, err := r.ReadRegular(n, maxOutput)
		if err != nil {
			return nil, fmt.Errorf("grub: reading %s that grub-mkimage's run in the target left: %w", n, err)
		}
		out[n] = b
	}
	return out, nil
}

// mkimage builds a GRUB image for platform in the target and returns it,
// together with the named extra files of the platform directory, and
// leaves in the target's /boot/grub what grub-install leaves there (see
// installBootDir): the modules and data files, locales, font, theme,
// grubenv, the image as <platform>/core.img (core.efi, core.elf) and its
// early config as <platform>/load.cfg.
func (t Target) mkimage(ctx context.Context, platform, pkg, prefix, early string, modules []string, extra ...string) (img []byte, files map[string][]byte, err error) {
	if err := t.needTool("usr/bin/grub-mkimage", "grub-common"); err != nil {
		return nil, nil, err
	}
	libDir := "/usr/lib/grub/" + platform
	if !t.isDir(libDir) {
		return nil, nil, fmt.Errorf("grub: the target has no %s: install %s in it first", libDir, pkg)
	}
	work, err := os.MkdirTemp("", "vmdb2-grub-")
	if err != nil {
		return nil, nil, fmt.Errorf("grub: %w", err)
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "load.cfg"), []byte(early), 0o644); err != nil {
		return nil, nil, fmt.Errorf("grub: %w", err)
	}
	// The target's grub-editenv makes grubenv as grub-install does (only
	// when there is none), in its GRUB version's format. For the EFI
	// targets grub-install also leaves grub.efi, an image with an empty
	// prefix.
	script := `set -e
grub=$1 out=$2; shift 2
mkdir -p "$grub"
[ -f "$grub/grubenv" ] || grub-editenv "$grub/grubenv" create
grub-mkimage -o "$out/core.img" -p "$PREFIX" "$@"
[ -z "$PLAIN" ] || grub-mkimage -o "$out/$PLAIN" -p "" "$@"
for f in $EXTRA; do cp "$LIB/$f" "$out/$f"; done
`
	plain := ""
	if platform == "x86_64-efi" || platform == "i386-efi" {
		plain = "grub.efi"
	}
	argv := []string{"/bin/sh", "-c", script, "sh", BootDir, workDir,
		"-d", libDir, "-O", platform, "-c", workDir + "/load.cfg"}
	argv = append(argv, modules...)
	env := append(append([]string{}, defaultEnv...), "EXTRA="+strings.Join(extra, " "), "LIB="+libDir, "PREFIX="+prefix, "PLAIN="+plain)
	if err := t.runWith(ctx, work, env, nil, argv...); err != nil {
		return nil, nil, err
	}
	outs := append([]string{"core.img"}, extra...)
	if plain != "" {
		outs = append(outs, plain)
	}
	files, err = readOutputs(work, outs...)
	if err != nil {
		return nil, nil, err
	}
	img = files["core.img"]
	delete(files, "core.img")
	made := map[string][]byte{platform + "/load.cfg": []byte(early), platform + "/" + coreName(platform): img}
	if plain != "" {
		made[platform+"/"+plain] = files[plain]
	}
	if strings.HasSuffix(platform, "-ieee1275") {
		made["grub"] = img // grub-install's copy for old Open Firmware boot scripts
	}
	if err := installBootDir(t.Root, platform, made); err != nil {
		return nil, nil, err
	}
	return img, files, nil
}

// BuildBIOS builds GRUB's core.img for BIOS booting from the target's
// /usr/lib/grub/i386-pc (package grub-pc-bin) with the target's
// grub-mkimage, and returns it with the target's boot.img. The modules
// are also copied to /boot/grub/i386-pc/ of the target, with core.img's
// early config as load.cfg, as grub-install does.
func BuildBIOS(ctx context.Context, t Target, l Layout) (coreImg, bootImg []byte, err error) {
	c, err := BootConfig(l)
	if err != nil {
		return nil, nil, err
	}
	mods := append(c.Modules, BIOSModules...)
	core, files, err := t.mkimage(ctx, "i386-pc", "grub-pc-bin", c.Prefix, c.Early, mods, "boot.img")
	if err != nil {
		return nil, nil, err
	}
	return core, files["boot.img"], nil
}

// BuildEFI builds GRUB's EFI image for arch (a Debian architecture:
// amd64, i386, arm64, armhf) from the target's /usr/lib/grub/<target>
// (package grub-efi-<arch>-bin) with the target's grub-mkimage. The image
// finds the filesystem holding /boot/grub by UUID. The modules are also copied to
// /boot/grub/<target>/ of the target.
func BuildEFI(ctx context.Context, t Target, l Layout, arch string) ([]byte, error) {
	c, err := BootConfig(l)
	if err != nil {
		return nil, err
	}
	a, err := EFIArch(arch)
	if err != nil {
		return nil, err
	}
	mods := append(c.Modules, EFIModules...)
	img, _, err := t.mkimage(ctx, a.GrubEFI, a.GrubEFIPackage+"-bin", c.Prefix, c.Early, mods)
	return img, err
}

// InstallEFI writes an EFI image from BuildEFI into espDir, the staging
// directory of the EFI system partition, as EFI/BOOT/<BOOTX64.EFI…> (the
// removable-media path, which firmware boots without NVRAM entries) and
// EFI/debian/grub<x64…>.efi (where Debian's grub-install puts it).
func InstallEFI(espDir string, img []byte, arch string) error {
	a, err := EFIArch(arch)
	if err != nil {
		return err
	}
	if len(img) < 2 || img[0] != 'M' || img[1] != 'Z' {
		return fmt.Errorf("grub: the EFI image is not a PE executable")
	}
	r, err := stage.OpenRoot(espDir)
	if err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	defer r.Close()
	// The ESP's directory may be a tree the image controls (nested under
	// the root filesystem's): resolve inside it and write regular files
	// only.
	for _, p := range []string{path.Join("EFI", "BOOT", a.EFIBoot), path.Join("EFI", "debian", "grub"+a.EFIName()+".efi")} {
		if err := r.Mkdirs(path.Dir(p), 0o755); err != nil {
			return fmt.Errorf("grub: the EFI system partition: %w", err)
		}
		if err := r.PutFile(p, img, 0o644); err != nil {
			return fmt.Errorf("grub: the EFI system partition: %w", err)
		}
	}
	return nil
}

// tailBuffer keeps the last 2 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = append([]byte(nil), t.b[len(t.b)-2048:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(bytes.ToValidUTF8(t.b, []byte("?"))) }
