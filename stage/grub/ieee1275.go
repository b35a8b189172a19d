package grub

import (
	"bytes"
	"context"
	"fmt"
	"os"
)

// IEEE1275Modules are the modules built into core.elf for Open Firmware
// (powerpc-ieee1275) besides the filesystem module. The firmware's disks
// (ofdisk) and console (ofconsole) are in GRUB's kernel there.
var IEEE1275Modules = []string{"part_msdos", "part_gpt", "normal", "linux", "search",
	"search_fs_uuid", "configfile", "echo", "test", "serial", "terminal", "gzio", "boot"}

// IEEE1275Platform is grub-mkimage's target for Open Firmware PowerPC
// machines (IBM POWER under PowerVM, QEMU's pseries machine with SLOF).
const IEEE1275Platform = "powerpc-ieee1275"

// MinPRePSize is the smallest PReP boot partition accepted before GRUB is
// built: bookworm's core.elf with IEEE1275Modules and ext2 is about
// 300 KiB; grub-install's own needs more, and vmdb2 users give it 8 MiB.
const MinPRePSize = 512 << 10

// BuildIEEE1275 builds GRUB's core.elf for Open Firmware (IEEE 1275)
// PowerPC machines from the target's /usr/lib/grub/powerpc-ieee1275
// (package grub-ieee1275-bin) with the target's grub-mkimage. The image
// finds the filesystem holding /boot/grub by UUID and reads
// $prefix/grub.cfg there (see IEEE1275Config). The modules are also
// copied to /boot/grub/powerpc-ieee1275/ of the target, as grub-install
// does.
func BuildIEEE1275(ctx context.Context, t Target, l Layout) ([]byte, error) {
	c, err := IEEE1275Config(l)
	if err != nil {
		return nil, err
	}
	mods := append(c.Modules, IEEE1275Modules...)
	img, _, err := t.mkimage(ctx, IEEE1275Platform, "grub-ieee1275-bin", c.Prefix, c.Early, mods)
	if err != nil {
		return nil, err
	}
	if err := checkCoreELF(img); err != nil {
		return nil, err
	}
	return img, nil
}

// IEEE1275Config is BootConfig for Open Firmware: the same modules, but
// no hd0 name in the prefix or the hint (Open Firmware's disks are named
// by their device-tree paths): the prefix is /boot/grub's path in its
// filesystem on the device GRUB was loaded from, and the embedded search
// by UUID sets the device. GRUB's names of an LV or a LUKS container do
// not depend on the firmware, so they stay.
func IEEE1275Config(l Layout) (CoreConfig, error) {
	f, dir, err := l.Boot()
	if err != nil {
		return CoreConfig{}, err
	}
	c := CoreConfig{Prefix: dir, Early: EarlyConfig(f.UUID, "", dir), Modules: f.modules()}
	if len(f.Layers) > 0 {
		c.Prefix = "(" + f.drive() + ")" + dir
		c.Early = EarlyConfig(f.UUID, f.drive(), dir)
	}
	return c, nil
}

// checkCoreELF checks that img is what grub-mkimage -O powerpc-ieee1275
// makes: a 32-bit big-endian PowerPC ELF executable.
func checkCoreELF(img []byte) error {
	if len(img) < 52 || !bytes.Equal(img[:4], []byte("\x7fELF")) {
		return fmt.Errorf("grub: core.elf is not an ELF file")
	}
	// EI_CLASS 1 (32-bit), EI_DATA 2 (big endian), e_machine 20 (PPC).
	if img[4] != 1 || img[5] != 2 || img[18] != 0 || img[19] != 20 {
		return fmt.Errorf("grub: core.elf is not a 32-bit big-endian PowerPC ELF (class %d, data %d, machine %d)", img[4], img[5], int(img[18])<<8|int(img[19]))
	}
	return nil
}

// PRePTooSmallError says that core.elf does not fit the PReP partition.
type PRePTooSmallError struct {
	Need, Have int64
}

func (e *PRePTooSmallError) Error() string {
	return fmt.Sprintf("grub: GRUB's core.elf (%d bytes) does not fit into the PReP boot partition (%d bytes): make the partition bigger (8 MiB is usual)", e.Need, e.Have)
}

// WritePReP writes core.elf raw at the start of the PReP boot partition
// of image (byte offset and size of the partition), as grub-install does
// on the partition's device, and zeroes the rest of the partition (Open
// Firmware loads the ELF from the partition's first byte; the zeroes make
// the result the same on a reused disk as on a new image file). Nothing is
// written when core.elf is not a PowerPC ELF or does not fit.
func WritePReP(image string, offset, size int64, coreELF []byte) error {
	if err := checkCoreELF(coreELF); err != nil {
		return err
	}
	if offset <= 0 || size <= 0 {
		return fmt.Errorf("grub: PReP partition at offset %d, size %d: not a partition", offset, size)
	}
	if int64(len(coreELF)) > size {
		return &PRePTooSmallError{Need: int64(len(coreELF)), Have: size}
	}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("grub: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Mode().IsRegular() && offset+size > st.Size() {
		err = fmt.Errorf("the PReP partition (bytes %d-%d) ends beyond the image (%d bytes)", offset, offset+size, st.Size())
	}
	if err == nil {
		_, err = f.WriteAt(coreELF, offset)
	}
	zero := make([]byte, 1<<20)
	for pos := int64(len(coreELF)); err == nil && pos < size; pos += int64(len(zero)) {
		n := min(int64(len(zero)), size-pos)
		_, err = f.WriteAt(zero[:n], offset+pos)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("grub: writing core.elf into the PReP partition of %s: %w", image, err)
	}
	return nil
}
