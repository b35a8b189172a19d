package partition

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// SetFlag turns flag on or off on partition number, like
// `parted -s DEV -- set NUMBER FLAG on|off` (parted 3.5), and writes the table.
//
// msdos flags: boot (the active bit; turning it on clears it on every other
// partition), lba, hidden, and the type flags esp (0xef), lvm (0x8e), raid
// (0xfd), swap (0x82), prep (0x41), palo (0xf0), msftres (0x27), diag (0x12),
// irst (0x84), bls_boot (0xea). gpt flags: boot and esp (EFI System type),
// bios_grub, lvm, raid, swap, prep, msftres, msftdata, hp-service, diag,
// irst, chromeos_kernel, bls_boot, linux-home, atvrecv (type GUIDs), hidden
// (attribute bit 0) and legacy_boot (attribute bit 2).
//
// As in parted, changing any flag other than boot/hidden/legacy_boot
// recomputes the partition type: a type flag that is on wins; otherwise the
// type follows the file system found in the partition (FAT and NTFS give
// their types, swap gives swap, anything else or nothing gives Linux). So
// turning a type flag off on a still-empty partition yields the Linux type.
func (d *Disk) SetFlag(number int, flag string, on bool) error {
	if d.label == "" {
		return fmt.Errorf("set flag: %s has no partition table: run mklabel first", d.path)
	}
	var p *Partition
	for _, q := range d.parts {
		if q.Number == number {
			p = q
		}
	}
	if p == nil {
		return fmt.Errorf("set flag %s on partition %d: partition doesn't exist on %s (it has %s)", flag, number, d.path, d.numbers())
	}
	name := strings.ToLower(strings.TrimSpace(flag))
	table, other, otherName := msdosFlags, gptFlags, "gpt"
	if d.label == "gpt" {
		table, other, otherName = gptFlags, msdosFlags, "msdos"
	}
	f, ok := table[name]
	if !ok {
		extra := ""
		if _, ok := other[name]; ok {
			extra = fmt.Sprintf(" (it exists only on %s labels)", otherName)
		}
		return fmt.Errorf("set flag: unknown flag %q for a %s label%s; known flags: %s", flag, d.label, extra, flagNames(table))
	}
	saved := *p
	savedBoot := map[int]bool{}
	for _, q := range d.parts {
		savedBoot[q.Number] = q.Bootable
	}
	if d.label == "msdos" {
		if err := d.setMBRFlag(p, name, f, on); err != nil {
			return err
		}
	} else {
		if err := d.setGPTFlag(p, name, f, on); err != nil {
			return err
		}
	}
	if err := d.write(); err != nil {
		*p = saved
		for _, q := range d.parts {
			q.Bootable = savedBoot[q.Number]
		}
		return err
	}
	return nil
}

func (d *Disk) numbers() string {
	if len(d.parts) == 0 {
		return "no partitions"
	}
	var s []string
	for _, p := range d.parts {
		s = append(s, fmt.Sprint(p.Number))
	}
	return "partitions " + strings.Join(s, ", ")
}

func (d *Disk) setMBRFlag(p *Partition, name string, f flagDef, on bool) error {
	if f.kind == flagActive {
		p.Bootable = on
		if on {
			for _, q := range d.parts {
				if q != p {
					q.Bootable = false
				}
			}
		}
		return nil
	}
	t := p.MBRType
	typeFlag := mbrTypeFlag(t)
	hidden := mbrHiddenType(t)
	base := t
	if hidden {
		base = t &^ 0x10
	}
	lba := base == mbrFAT32LBA || base == mbrFAT16LBA || base == mbrExtLBA
	switch f.kind {
	case flagType:
		if on {
			typeFlag = name
			hidden = false
		} else if typeFlag != "" && msdosFlags[typeFlag].mbr == f.mbr {
			typeFlag = ""
		}
	case flagHidden:
		hidden = on
	case flagLBA:
		lba = on
	}
	fs, err := d.probeFS(p)
	if err != nil {
		return err
	}
	if hidden && fs != "" && !strings.HasPrefix(fs, "fat") && fs != "ntfs" {
		hidden = false
	}
	switch {
	case typeFlag == "diag" && (t == mbrDiag || t == mbrMSRecovery || t == mbrDellDiag):
	case typeFlag != "":
		p.MBRType = msdosFlags[typeFlag].mbr
	default:
		p.MBRType = mbrTypeForFS(fs, lba, hidden)
	}
	p.hasRawCHS = false
	return nil
}

func (d *Disk) setGPTFlag(p *Partition, name string, f flagDef, on bool) error {
	if f.kind == flagAttr {
		if on {
			p.Attributes |= 1 << f.attr
		} else {
			p.Attributes &^= 1 << f.attr
		}
		return nil
	}
	typeFlag := gptTypeFlag(p.TypeGUID)
	if on {
		typeFlag = name
	} else if typeFlag != "" && gptFlags[typeFlag].gpt == f.gpt {
		typeFlag = ""
	}
	if typeFlag != "" {
		p.TypeGUID = gptFlags[typeFlag].gpt
		return nil
	}
	fs, err := d.probeFS(p)
	if err != nil {
		return err
	}
	p.TypeGUID = gptTypeForFS(fs)
	return nil
}

// probeFS returns the parted name of the file system in p, as far as it
// matters for partition types: fat16, fat32, ntfs, linux-swap, ext4 or "".
func (d *Disk) probeFS(p *Partition) (string, error) {
	n := min(p.Size, 8192)
	if n < 512 {
		return "", nil
	}
	b := make([]byte, n)
	if _, err := d.f.ReadAt(b, p.Offset); err != nil {
		return "", fmt.Errorf("read partition %d of %s: %w", p.Number, d.path, err)
	}
	return probeBytes(b), nil
}

func probeBytes(b []byte) string {
	if len(b) >= 4096 {
		if s := string(b[4086:4096]); s == "SWAPSPACE2" || s == "SWAP-SPACE" {
			return "linux-swap"
		}
	}
	if len(b) >= 1024+58 && binary.LittleEndian.Uint16(b[1024+56:]) == 0xef53 {
		return "ext4"
	}
	if b[510] == 0x55 && b[511] == 0xaa {
		switch {
		case string(b[3:11]) == "NTFS    ":
			return "ntfs"
		case string(b[82:87]) == "FAT32":
			return "fat32"
		case string(b[54:59]) == "FAT16" || string(b[54:59]) == "FAT12":
			return "fat16"
		}
	}
	return ""
}
