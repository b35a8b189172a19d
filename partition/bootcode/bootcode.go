// Package bootcode writes GRUB's BIOS boot code into a partitioned image
// file (or block device) the way grub-bios-setup does, without
// grub-install, grub-bios-setup, a loop device or a mount.
//
// GRUB's BIOS boot has two parts. boot.img (one sector, from
// /usr/lib/grub/i386-pc/boot.img) goes into the first 440 bytes of the MBR;
// it loads the first sector of core.img, which is diskboot.img, and that
// loads the rest of core.img through a block list. core.img (made by
// `grub-mkimage -O i386-pc`) is placed
//
//   - on an msdos label: in the "MBR gap", sectors 1 up to the start of the
//     first partition (2047 sectors when that partition starts at 1 MiB);
//   - on a gpt label: at the start of the BIOS boot partition (type
//     21686148-6449-6E6F-744E-656564454649, parted's bios_grub flag).
//
// What is patched, as grub-bios-setup (GRUB 2.06, util/setup.c) does for a
// hard disk:
//
//   - boot.img 0x5C (u64): the sector where core.img starts;
//   - boot.img 0x64: the boot drive, 0xFF = "use the drive the BIOS
//     booted from";
//   - boot.img 0x66: the jump of the floppy/drive check becomes two NOPs,
//     so the BIOS-supplied drive number is always used (grub-bios-setup
//     does this unless --allow-floppy);
//   - boot.img 0x03..0x59: the bytes already on the disk are kept (a
//     possible BIOS parameter block);
//   - core.img 0x1F4: the diskboot block list (u64 first sector, u16
//     sector count, u16 load segment 0x0820) points at the sectors after
//     core.img's first one.
//
// Bytes 440..511 of the MBR (disk signature, partition table, 0x55AA) are
// never written: the table is written by package partition and stays as
// it is. Unlike grub-bios-setup, no Reed-Solomon recovery codes are added
// to core.img (the same as `grub-bios-setup --no-rs-codes`), and the
// "embedding area" is not checked for other software's signatures.
package bootcode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vmdb2-go/vmdb2/partition"
)

// SectorSize is the only logical sector size GRUB's BIOS boot code handles.
const SectorSize = 512

// Offsets in boot.img and in the first sector of core.img (GRUB 2.06,
// include/grub/i386/pc/boot.h).
const (
	bpbStart         = 0x03  // GRUB_BOOT_MACHINE_BPB_START
	bpbEnd           = 0x5A  // GRUB_BOOT_MACHINE_BPB_END
	kernelSectorOff  = 0x5C  // GRUB_BOOT_MACHINE_KERNEL_SECTOR
	bootDriveOff     = 0x64  // GRUB_BOOT_MACHINE_BOOT_DRIVE
	driveCheckOff    = 0x66  // GRUB_BOOT_MACHINE_DRIVE_CHECK
	mbrCodeEnd       = 0x1B8 // GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC: 440
	blocklistOff     = 0x1F4 // last 12 bytes of diskboot.img's sector
	blocklistSegment = 0x0820
)

// ErrNoBIOSBootPartition is returned for a gpt disk without a BIOS boot
// partition: GRUB has nowhere to put core.img.
var ErrNoBIOSBootPartition = errors.New("the gpt label has no BIOS boot partition (type 21686148-6449-6E6F-744E-656564454649): " +
	"add a small partition (1 MiB is plenty) and set its bios_grub flag, or use an msdos label")

// TooBigError says that core.img does not fit where it has to go.
type TooBigError struct {
	// Where describes the area: "the MBR gap (sectors 1-2047)" or "BIOS
	// boot partition 1 (sectors 2048-4095)".
	Where string
	// Need is core.img's size in sectors, Have the area's.
	Need, Have int64
}

func (e *TooBigError) Error() string {
	fix := "enlarge the BIOS boot partition (1MiB is plenty)"
	if strings.HasPrefix(e.Where, "the MBR gap") {
		fix = "start the first partition at 1MiB"
	}
	return fmt.Sprintf("GRUB's core.img needs %d sectors (%d bytes) but %s holds only %d: %s, or build core.img with fewer modules",
		e.Need, e.Need*SectorSize, e.Where, e.Have, fix)
}

// Placement is where core.img goes on a disk.
type Placement struct {
	// CoreLBA is the first sector of core.img.
	CoreLBA int64
	// AreaSectors is how many sectors the area starting at CoreLBA holds.
	AreaSectors int64
	// Where describes the area for messages.
	Where string
}

// Place finds where core.img (coreSectors sectors long) goes on d: the MBR
// gap on msdos, the BIOS boot partition on gpt. It returns a *TooBigError
// when core.img does not fit and ErrNoBIOSBootPartition (wrapped) when a
// gpt disk has none.
func Place(d *partition.Disk, coreSectors int64) (Placement, error) {
	if d.SectorSize() != SectorSize {
		return Placement{}, fmt.Errorf("%s has %d-byte sectors; GRUB's BIOS boot code needs 512-byte sectors", d.Path(), d.SectorSize())
	}
	var pl Placement
	switch d.Label() {
	case "msdos":
		first := int64(-1)
		for _, p := range d.Partitions() {
			if p.SizeSectors > 0 && (first < 0 || p.StartSector < first) {
				first = p.StartSector
			}
		}
		if first < 0 {
			return Placement{}, fmt.Errorf("%s has an msdos label without partitions: the MBR gap before the first partition is where core.img goes", d.Path())
		}
		pl = Placement{CoreLBA: 1, AreaSectors: first - 1}
		if first > 1 {
			pl.Where = fmt.Sprintf("the MBR gap (sectors 1-%d, before partition 1's start)", first-1)
		} else {
			pl.Where = "the MBR gap (empty: a partition starts at sector 1)"
		}
	case "gpt":
		found := false
		for _, p := range d.Partitions() {
			if p.TypeGUID == partition.TypeBIOSBoot {
				pl = Placement{CoreLBA: p.StartSector, AreaSectors: p.SizeSectors,
					Where: fmt.Sprintf("BIOS boot partition %d (sectors %d-%d)", p.Number, p.StartSector, p.EndSector())}
				found = true
				break
			}
		}
		if !found {
			return Placement{}, fmt.Errorf("%s: %w", d.Path(), ErrNoBIOSBootPartition)
		}
	case "":
		return Placement{}, fmt.Errorf("%s has no partition table: GRUB's BIOS boot code needs an msdos or gpt label", d.Path())
	default:
		return Placement{}, fmt.Errorf("%s: GRUB's BIOS boot code cannot be placed on a %s label", d.Path(), d.Label())
	}
	if coreSectors > pl.AreaSectors {
		return Placement{}, &TooBigError{Where: pl.Where, Need: coreSectors, Have: pl.AreaSectors}
	}
	return pl, nil
}

// Sectors returns how many 512-byte sectors n bytes take.
func Sectors(n int) int64 { return (int64(n) + SectorSize - 1) / SectorSize }

// Patch returns copies of boot.img and core.img patched for a core.img
// starting at sector coreLBA, with disk's first sector (the MBR as it is
// on the disk) supplying boot.img's BPB area and bytes 440..511. The
// result's boot sector is the whole new sector 0; core is padded to whole
// sectors. It checks that bootImg is one sector ending in 0x55AA and that
// coreImg starts with GRUB's diskboot.img (the block list's load segment
// is 0x0820).
func Patch(bootImg, coreImg, mbr []byte, coreLBA int64) (boot, core []byte, err error) {
	if len(bootImg) != SectorSize {
		return nil, nil, fmt.Errorf("boot.img is %d bytes; GRUB's i386-pc boot.img is exactly 512", len(bootImg))
	}
	if bootImg[510] != 0x55 || bootImg[511] != 0xAA {
		return nil, nil, errors.New("boot.img does not end with the boot signature 55 AA: not GRUB's i386-pc boot.img")
	}
	if len(mbr) != SectorSize {
		return nil, nil, fmt.Errorf("the disk's first sector is %d bytes, want 512", len(mbr))
	}
	if len(coreImg) < 2*SectorSize {
		return nil, nil, fmt.Errorf("core.img is only %d bytes: not a core image from grub-mkimage -O i386-pc", len(coreImg))
	}
	if seg := binary.LittleEndian.Uint16(coreImg[blocklistOff+10:]); seg != blocklistSegment {
		return nil, nil, fmt.Errorf("core.img does not start with GRUB's diskboot.img (block list segment %#04x, want %#04x): build it with grub-mkimage -O i386-pc", seg, blocklistSegment)
	}
	if coreLBA < 1 {
		return nil, nil, fmt.Errorf("core.img cannot start at sector %d", coreLBA)
	}
	nsec := Sectors(len(coreImg))
	if nsec-1 > 0xFFFF {
		return nil, nil, fmt.Errorf("core.img is %d sectors; diskboot's block list holds at most 65536", nsec)
	}

	boot = append([]byte(nil), mbr...)
	copy(boot[:mbrCodeEnd], bootImg[:mbrCodeEnd])
	copy(boot[bpbStart:bpbEnd], mbr[bpbStart:bpbEnd])
	binary.LittleEndian.PutUint64(boot[kernelSectorOff:], uint64(coreLBA))
	boot[bootDriveOff] = 0xFF
	boot[driveCheckOff], boot[driveCheckOff+1] = 0x90, 0x90

	core = make([]byte, nsec*SectorSize)
	copy(core, coreImg)
	binary.LittleEndian.PutUint64(core[blocklistOff:], uint64(coreLBA+1))
	binary.LittleEndian.PutUint16(core[blocklistOff+8:], uint16(nsec-1))
	return boot, core, nil
}

// InstallBIOS makes the partitioned image (or block device) at path boot
// GRUB from a BIOS: it reads the partition table, places core.img (see
// Place), patches both images (see Patch) and writes core.img, then the
// first 440 bytes of the MBR. The partition table, the disk signature and
// every byte outside those two areas are left as they are.
func InstallBIOS(image string, bootImg, coreImg []byte) error {
	d, err := partition.Open(image)
	if err != nil {
		return fmt.Errorf("install GRUB boot code: %w", err)
	}
	pl, err := Place(d, Sectors(len(coreImg)))
	d.Close()
	if err != nil {
		return fmt.Errorf("install GRUB boot code: %w", err)
	}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("install GRUB boot code: %w", err)
	}
	mbr := make([]byte, SectorSize)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		f.Close()
		return fmt.Errorf("install GRUB boot code: reading the MBR of %s: %w", image, err)
	}
	boot, core, err := Patch(bootImg, coreImg, mbr, pl.CoreLBA)
	if err != nil {
		f.Close()
		return fmt.Errorf("install GRUB boot code: %w", err)
	}
	// core.img first, so that an interrupted install never leaves boot
	// code pointing at sectors that do not hold it yet.
	if _, err := f.WriteAt(core, pl.CoreLBA*SectorSize); err != nil {
		f.Close()
		return fmt.Errorf("install GRUB boot code: writing core.img into %s of %s: %w", pl.Where, image, err)
	}
	if _, err := f.WriteAt(boot[:mbrCodeEnd], 0); err != nil {
		f.Close()
		return fmt.Errorf("install GRUB boot code: writing boot.img into the MBR of %s: %w", image, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("install GRUB boot code: %s: %w", image, err)
	}
	return nil
}
