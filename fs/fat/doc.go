// Package fat writes a complete FAT12, FAT16 or FAT32 filesystem, populated
// from a host directory tree, straight into a region of a disk image.
//
// It is a write-once builder: Build lays out the whole filesystem in one pass
// (boot sector, FSInfo, FATs, directories, file data) at a byte offset of an
// io.WriterAt, without loop devices, mounts or root. It is what the `mkfs:
// vfat` step of a vmdb2 spec turns into, once the staging directory mounted
// at that partition (an EFI system partition, a Raspberry Pi firmware
// partition, ...) is complete.
//
// The geometry (reserved sectors, sectors per cluster, FAT type and FAT size)
// is computed the way mkfs.fat from dosfstools 4.2 computes it for a
// partition of the same size, so the result looks like what `mkfs.fat` plus a
// copy through the kernel's vfat driver would give. Everything that mkfs.fat
// or the kernel would take from a clock or a random source (volume serial
// number, timestamps) is taken from Options instead, so two builds of the same
// tree with the same Options give identical bytes.
//
// Source trees map onto FAT as follows:
//
//   - Regular files and directories are copied; entries of a directory are
//     written in byte order of their names.
//   - A name that is a valid upper-case 8.3 name is stored as a short name
//     only; any other name gets VFAT long-name entries plus a generated short
//     name (basis name, with a "~N" tail when the name does not fit 8.3, had
//     to be changed, or collides).
//   - Names that FAT cannot hold (control characters, any of " * / : < > ? \
//     |, a trailing dot or space, more than 255 UTF-16 units, invalid UTF-8)
//     and names that differ only in case are errors naming the file.
//   - A symbolic link is followed when it is relative, and it and every link
//     it leads through stay inside the source tree, and it ends at a regular
//     file: the file's content is copied. Any other link (absolute, dangling,
//     leaving the tree, or pointing at a directory) is an error naming it;
//     FAT has no links and a vfat mount would have refused to create one.
//   - Device nodes, FIFOs and sockets are errors naming the file.
//   - A file without any write permission bit gets the read-only attribute;
//     files get the archive attribute, directories the directory attribute.
//
// Every timestamp is Options.Time in UTC, rounded down to FAT's two-second
// resolution and clamped to the range FAT can hold (1980-01-01 to
// 2107-12-31).
//
// For an empty tree the reserved sectors, FATs and root directory are byte
// for byte what `mkfs.fat --invariant` writes, except for: the boot code
// and its message (our own, non-bootable stub), the hidden-sector count
// (the partition's offset here; mkfs.fat writes what the kernel reports,
// often 0 for a device-mapper or file target), and the FSInfo next-free
// hint (the first free cluster, as Microsoft's specification says; mkfs.fat
// writes the last allocated one). Files are laid out contiguously, depth
// first in name order; free clusters are not written.
package fat
