package steps

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/partition/bootcode"
	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/grub"
)

// grubKind installs GRUB without grub-install on a device: the target's
// grub packages are installed as vmdb2 does, /etc/default/grub gets
// vmdb2's settings, the target's own grub-mkconfig writes grub.cfg (its
// device probes answered from the build's tag table), the target's
// grub-mkimage builds the boot images, and this program writes boot.img and
// core.img into the MBR gap or BIOS boot partition (bios), or
// EFI/BOOT/BOOTX64.EFI and EFI/debian/grubx64.efi into the ESP (uefi).
var grubKind = &Kind{
	Name:        "grub",
	Summary:     "install the GRUB boot loader (bios, uefi or ieee1275)",
	Implemented: true,
	Check:       checkGrub,
	Keys: []Key{
		{Name: "grub", Type: TStr, Required: true},
		{Name: "tag", Type: TStr, Default: ""},
		{Name: "root-fs", Type: TStr, Default: ""},
		{Name: "efi", Type: TStr, Default: ""},
		{Name: "efi-part", Type: TStr, Default: ""},
		{Name: "prep", Type: TStr, Default: ""},
		{Name: "console", Type: TStr, Default: ""},
		{Name: "image-dev", Type: TStr, Default: ""},
		{Name: "quiet", Type: TBool, Default: false},
		{Name: "timeout", Type: TInt, Default: 0},
		{Name: "kernel-params", Type: TList, Default: grub.DefaultKernelParams},
		{Name: "rootfs", Type: TStr, Default: "", Legacy: "vmdb2 0.13's name of `tag`; used as `tag` when `tag` and `root-fs` are not given"},
	},
	Run: runGrub,
}

func runGrub(b *Build, s *Step) (err error) {
	defer func() {
		if err == nil {
			b.State.noteBootLoader(s)
		}
	}()
	flavour := s.Str("grub")
	if flavour == "ieee1275" {
		return runGrubIEEE1275(b, s)
	}
	root, layout, esp, err := b.checkGrub(s, flavour)
	if err != nil {
		return err
	}
	disk := root.Partition().Image
	b.Progress("Installing GRUB for %s", strings.ToUpper(flavour))

	if err := b.installGrubPackages(root, flavour); err != nil {
		return err
	}
	if err := b.editGrubDefaults(root, s); err != nil {
		return err
	}
	rootDir, err := b.tagDir(root)
	if err != nil {
		return err
	}
	t := grub.Target{Root: rootDir, Run: b.nsRun}
	if err := grub.MkConfig(b.ctx, t, layout); err != nil {
		return err
	}
	switch flavour {
	case "bios":
		core, boot, err := grub.BuildBIOS(b.ctx, t, layout)
		if err != nil {
			return err
		}
		return bootcode.InstallBIOS(disk, boot, core)
	case "uefi":
		return b.installGrubEFI(t, root, esp, layout)
	}
	return nil
}

// checkGrub checks everything a bios or uefi grub step can check before
// anything is written: the root, the boot layout, the ESP (uefi) or the
// gap for the core image (bios).
func (b *Build) checkGrub(s *Step, flavour string) (root *Tag, layout grub.Layout, esp *Tag, err error) {
	if root, err = b.grubRoot(s); err != nil {
		return nil, layout, nil, err
	}
	disk := root.Partition().Image
	if dev := s.Str("image-dev"); dev != "" && dev != disk {
		b.Warnf("image-dev %s ignored: GRUB goes on %s, the image holding %s", dev, disk, root.Name)
	}
	if layout, err = b.grubLayout(root); err != nil {
		return nil, layout, nil, err
	}
	if _, err := grub.BootConfig(layout); err != nil {
		return nil, layout, nil, err
	}
	switch flavour {
	case "uefi":
		if esp, err = b.grubESP(s); err != nil {
			return nil, layout, nil, err
		}
	case "bios":
		if err := checkCoreGap(disk); err != nil {
			return nil, layout, nil, err
		}
	}
	return root, layout, esp, nil
}

// grubESP returns the EFI system partition of a `grub: uefi` step (`efi`
// or `efi-part`), checked: a vfat partition, on an architecture GRUB has
// an EFI target for. An ESP the spec did not mount gets a staging
// directory of its own (vmdb2's grub mounts it at /boot/efi only while it
// installs), built into the ESP at mkfs's teardown.
func (b *Build) grubESP(s *Step) (*Tag, error) {
	esp, err := b.State.Tags.Get(firstNonEmpty(s.Str("efi"), s.Str("efi-part")))
	if err != nil {
		return nil, fmt.Errorf("grub: the EFI system partition: %w", err)
	}
	if esp.PartNumber == 0 {
		return nil, fmt.Errorf("grub: the EFI system partition %s is not a partition", esp.Name)
	}
	if esp.FSType != "vfat" {
		return nil, fmt.Errorf("grub: the EFI system partition %s must be vfat, not %q", esp.Name, esp.FSType)
	}
	if _, err := grub.EFIArch(b.State.Arch); err != nil {
		return nil, err
	}
	if !esp.hasTree() {
		st, err := b.Stage()
		if err != nil {
			return nil, err
		}
		if esp.stageDir, err = st.NewFilesystemDir(); err != nil {
			return nil, err
		}
	}
	return esp, nil
}

// checkCoreGap refuses a disk whose gap before the first partition cannot
// hold GRUB's core.img. core.img is known only once built; no GRUB 2
// core.img with the modules a disk boot needs is smaller than
// minCoreSectors, so a smaller gap is refused before anything is written.
// The exact size is checked again before core.img is written.
func checkCoreGap(disk string) error {
	d, err := partition.Open(disk)
	if err != nil {
		return err
	}
	_, err = bootcode.Place(d, minCoreSectors)
	d.Close()
	if err != nil {
		return fmt.Errorf("grub: no room for GRUB's core.img: %w", err)
	}
	return nil
}

// installGrubEFI builds GRUB's EFI image in the target and installs it
// on the ESP, which it flags as such in the partition table.
func (b *Build) installGrubEFI(t grub.Target, root, esp *Tag, layout grub.Layout) error {
	img, err := grub.BuildEFI(b.ctx, t, layout, b.State.Arch)
	if err != nil {
		return err
	}
	espDir, err := b.tagDir(esp)
	if err != nil {
		return err
	}
	if err := b.FileOp(stage.FileOp{Op: "create-dir", Root: espDir, Path: "/EFI", Perm: 0o755}); err != nil {
		return err
	}
	if err := b.installEFI(root, esp, layout, img); err != nil {
		return err
	}
	return b.setESPFlag(esp)
}

// grubRoot returns the root filesystem's tag of a grub step (`tag`, or
// its aliases `root-fs` and vmdb2 0.13's `rootfs`), mounted, a filesystem
// on a partition (directly or through LVs and LUKS containers).
func (b *Build) grubRoot(s *Step) (*Tag, error) {
	name := firstNonEmpty(s.Str("tag"), s.Str("root-fs"), s.Str("rootfs"))
	if name == "" {
		return nil, errors.New("grub: give the root filesystem's tag in `tag`")
	}
	root, err := b.mountedTag(name)
	if err != nil {
		return nil, err
	}
	if root.Partition() == nil || root.UUIDText == "" {
		return nil, fmt.Errorf("grub: tag %s is not a filesystem on a partition (mkpart and mkfs it first)", root.Name)
	}
	return root, nil
}

// grubLayout describes to GRUB every filesystem mounted in root's tree
// (root itself and those nested in it, such as /boot and /boot/efi): its
// mount point resolved inside the tree, UUID, type and label, the layers
// under it (LV, LUKS) and the partition at the bottom of its stack (table,
// number, PARTUUID as the kernel names it).
func (b *Build) grubLayout(root *Tag) (grub.Layout, error) {
	var l grub.Layout
	for _, t := range b.State.Tags.All() {
		if !t.Mounted || t.UUIDText == "" {
			continue
		}
		mp, top, err := b.inTop(t)
		if err != nil {
			return nil, err
		}
		if top != root {
			continue
		}
		f, err := grubFilesystem(t)
		if err != nil {
			return nil, err
		}
		f.MountPoint = mp
		l = append(l, f)
	}
	return l, nil
}

// grubFilesystem describes tag's filesystem and its stack to GRUB.
func grubFilesystem(t *Tag) (grub.Filesystem, error) {
	part := t.Partition()
	if part == nil {
		return grub.Filesystem{}, fmt.Errorf("grub: tag %s is not on a partition of the image", t.Name)
	}
	d, err := partition.Open(part.Image)
	if err != nil {
		return grub.Filesystem{}, err
	}
	defer d.Close()
	f := grub.Filesystem{UUID: t.UUIDText, Type: t.FSType, Label: t.Label, Table: d.Label(), Partition: part.PartNumber}
	if f.Table == "gpt" {
		if p, ok := d.Partition(part.PartNumber); ok {
			f.PartUUID = strings.ToLower(p.GUID.String())
		}
	} else {
		f.PartUUID = fmt.Sprintf("%08x-%02d", d.MBRSignature(), part.PartNumber)
	}
	for _, layer := range t.Stack() {
		switch {
		case layer.LV != nil:
			f.Layers = append(f.Layers, grub.Layer{Kind: grub.LayerLVM, Name: layer.LV.MapperName(), VGUUID: layer.LV.VGUUID, LVUUID: layer.LV.LVUUID})
		case layer.LUKS != nil:
			f.Layers = append(f.Layers, grub.Layer{Kind: grub.LayerLUKS, Name: layer.LUKS.Name, UUID: layer.LUKS.UUID})
		}
	}
	return f, nil
}

// grubBootReadable checks at plan time that GRUB can read /boot/grub
// without a passphrase: the filesystem holding it (by the spec's mount
// points, nested mounts under root) must not be on a LUKS container.
// Booting from an encrypted /boot needs GRUB_ENABLE_CRYPTODISK and a
// passphrase typed to GRUB, which these images do not set up.
func grubBootReadable(tags *Tags, root *Tag) error {
	holder, depth := root, 1
	for _, t := range tags.All() {
		mp, ok := specMountPath(tags, t, root)
		if !ok || !t.Mounted {
			continue
		}
		holds := mp == "/boot/grub" || strings.HasPrefix("/boot/grub", mp+"/")
		if holds && mp != "/" && strings.Count(mp, "/") >= depth {
			holder, depth = t, strings.Count(mp, "/")
		}
	}
	for _, layer := range holder.Stack() {
		if layer.LUKS != nil {
			return fmt.Errorf("grub: /boot/grub would be on %s, which is on the LUKS container %s; GRUB cannot read it without unlocking it: put /boot on a plain partition (or an LV not on LUKS) with its own mount step", holder.Name, layer.LUKS.Name)
		}
	}
	return nil
}

// specMountPath is tag's mount point in root's tree as the spec writes it
// (dirnames joined along mount-on), and whether tag is in root's tree.
func specMountPath(tags *Tags, tag, root *Tag) (string, bool) {
	p := "/"
	for depth := 0; tag != root; depth++ {
		if tag.MountOn == "" || depth > len(tags.All()) {
			return "", false
		}
		p = path.Join("/", tag.MountPoint, p)
		parent, err := tags.Get(tag.MountOn)
		if err != nil {
			return "", false
		}
		tag = parent
	}
	return path.Clean(p), true
}

// minCoreSectors is a lower bound of the size of GRUB's i386-pc core.img
// with biosdisk, part_msdos/part_gpt and ext2 (about 60 KiB with
// bookworm's GRUB 2.06; 155 KiB with all the modules grub-install adds).
const minCoreSectors = 64

// installGrubPackages installs GRUB in the target as vmdb2 does (grub-pc
// for BIOS, grub-efi-<arch> for UEFI, grub-ieee1275 for IEEE 1275). When both flavours go into one image
// (a hybrid), the second gets only its -bin package, since Debian's
// grub-pc and grub-efi-* conflict.
func (b *Build) installGrubPackages(root *Tag, flavour string) error {
	dir, err := b.tagDir(root)
	if err != nil {
		return err
	}
	r, err := stage.OpenRoot(dir)
	if err != nil {
		return err
	}
	hasPC := r.Exists("/usr/sbin/grub-install") && r.Exists("/usr/lib/grub/i386-pc/modinfo.sh")
	efi, efiErr := grub.EFIArch(b.State.Arch)
	hasEFI := efiErr == nil && r.Exists("/usr/lib/grub/"+efi.GrubEFI+"/modinfo.sh")
	r.Close()
	var pkg string
	switch flavour {
	case "bios":
		pkg = "grub-pc"
		if hasEFI {
			pkg = "grub-pc-bin"
		}
	case "uefi":
		if efiErr != nil {
			return efiErr
		}
		pkg = efi.GrubEFIPackage
		if hasPC {
			pkg += "-bin"
		}
	case "ieee1275":
		pkg = "grub-ieee1275"
	}
	return bootstrap.AptInstall(b.ctx, bootstrap.AptOptions{
		Root: dir, Packages: []string{pkg}, Recommends: true, Clean: true,
		Run: b.nsRun, Progress: b.progressFunc(), Env: append(b.buildEnv(), "DEBIAN_FRONTEND=noninteractive"),
		Updates: &b.aptUpdates,
	})
}

// editGrubDefaults applies vmdb2 0.41's /etc/default/grub changes in
// place: kernel parameters (`kernel-params` plus the console and quiet
// ones), GRUB_ENABLE_CRYPTODISK, timeout, serial console.
func (b *Build) editGrubDefaults(root *Tag, s *Step) error {
	dir, err := b.tagDir(root)
	if err != nil {
		return err
	}
	r, err := stage.OpenRoot(dir)
	if err != nil {
		return err
	}
	content, err := r.ReadFile("/etc/default/grub")
	r.Close()
	if err != nil {
		return fmt.Errorf("grub: reading /etc/default/grub of the target: %w", err)
	}
	edited := grub.EditDefault(string(content), grub.Defaults{
		Arch: b.State.Arch, Serial: s.Str("console") == "serial", Quiet: s.Bool("quiet"), Timeout: int(s.Int("timeout")),
		KernelParams: s.Strings("kernel-params"),
	})
	return b.FileOp(stage.FileOp{Op: "create-file", Root: dir, Path: "/etc/default/grub", Contents: []byte(edited), Perm: 0o644})
}

// setESPFlag marks the ESP's partition as such (vmdb2 runs
// `parted set N esp on`).
func (b *Build) setESPFlag(esp *Tag) error {
	d, err := partition.Open(esp.Image)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.SetFlag(esp.PartNumber, "esp", true); err != nil {
		return err
	}
	return d.Close()
}
