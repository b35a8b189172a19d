package steps

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/stage/grub"
)

// checkIEEE1275Arch refuses a target whose grub-ieee1275 is not GRUB for
// powerpc-ieee1275 (on i386/amd64 it is the OLPC flavour).
func checkIEEE1275Arch(arch string) error {
	if a, ok := debarch.Get(arch); !ok || !a.GrubIEEE1275 {
		return fmt.Errorf("grub: ieee1275 installs GRUB for PowerPC Open Firmware machines (arch %s); this target is %s", strings.Join(debarch.IEEE1275Arches(), ", "), arch)
	}
	return nil
}

// runGrubIEEE1275 installs GRUB for IEEE 1275 (Open Firmware) PowerPC
// machines, as vmdb2's `grub: ieee1275` does with grub-install on the PReP
// partition, but without a device: the target's grub-ieee1275 is
// installed, /etc/default/grub edited and grub.cfg written by the target's
// grub-mkconfig as for bios and uefi; the target's grub-mkimage builds
// core.elf for powerpc-ieee1275, which is written raw into the PReP boot
// partition (tag `prep`), whose type becomes PReP (msdos 0x41, GPT
// 9E1A2D38-…); on msdos it is also made the active partition. Open Firmware (SLOF on QEMU's pseries) loads and runs it
// from there. Everything that can be checked is checked before the target
// or the image is changed; core.elf's size is checked before it is written.
func runGrubIEEE1275(b *Build, s *Step) error {
	root, err := b.grubRoot(s)
	if err != nil {
		return err
	}
	prep, err := b.prepPartition(s)
	if err != nil {
		return err
	}
	if err := checkIEEE1275Arch(b.State.Arch); err != nil {
		return err
	}
	if efi := firstNonEmpty(s.Str("efi"), s.Str("efi-part")); efi != "" {
		b.Warnf("efi %s ignored: GRUB for ieee1275 goes into the PReP partition %s", efi, prep.Name)
	}
	if dev := s.Str("image-dev"); dev != "" && dev != prep.Image {
		b.Warnf("image-dev %s ignored: GRUB goes on %s, the image holding %s", dev, prep.Image, prep.Name)
	}
	layout, err := b.grubLayout(root)
	if err != nil {
		return err
	}
	if _, err := grub.IEEE1275Config(layout); err != nil {
		return err
	}

	b.Progress("Installing GRUB for IEEE1275")
	if err := b.installGrubPackages(root, "ieee1275"); err != nil {
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
	core, err := grub.BuildIEEE1275(b.ctx, t, layout)
	if err != nil {
		return err
	}
	if int64(len(core)) > prep.Size {
		return &grub.PRePTooSmallError{Need: int64(len(core)), Have: prep.Size}
	}
	if err := setPRePFlags(prep); err != nil {
		return err
	}
	return grub.WritePReP(prep.Image, prep.Offset, prep.Size, core)
}

// prepPartition is the `prep` tag of a `grub: ieee1275` step, checked: a
// partition without a filesystem, big enough for GRUB's core.elf.
func (b *Build) prepPartition(s *Step) (*Tag, error) {
	prepName := s.Str("prep")
	if prepName == "" {
		return nil, errors.New("grub: ieee1275 needs the tag of the PReP boot partition in `prep` (GRUB's core.elf is written into it; 8 MiB is usual)")
	}
	prep, err := b.State.Tags.Get(prepName)
	if err != nil {
		return nil, fmt.Errorf("grub: the PReP boot partition: %w", err)
	}
	if prep.PartNumber == 0 {
		return nil, fmt.Errorf("grub: the PReP boot partition %s is not a partition (create it with mkpart)", prep.Name)
	}
	if prep.FSType != "" {
		return nil, fmt.Errorf("grub: the PReP boot partition %s has a %s filesystem (mkfs); it must hold only GRUB's core.elf, drop its mkfs step", prep.Name, prep.FSType)
	}
	if prep.Size < grub.MinPRePSize {
		return nil, fmt.Errorf("grub: the PReP boot partition %s is %d KiB, too small for GRUB's core.elf (at least %d KiB; 8 MiB is usual)", prep.Name, prep.Size>>10, grub.MinPRePSize>>10)
	}
	return prep, nil
}

// setPRePFlags makes the tag's partition a PReP boot partition (vmdb2
// runs `parted set N prep on`) and, on an msdos table, the active one:
// SLOF loads a PReP partition of an msdos table only when it is active
// (vmdb2 sets just the type, so its msdos images do not boot there).
func setPRePFlags(tag *Tag) error {
	d, err := partition.Open(tag.Image)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.SetFlag(tag.PartNumber, "prep", true); err != nil {
		return err
	}
	if d.Label() == "msdos" {
		if err := d.SetFlag(tag.PartNumber, "boot", true); err != nil {
			return err
		}
	}
	return d.Close()
}
