// Package partition computes disk geometry the way GNU parted does and writes
// msdos and GPT partition tables, flags and boot code into image files or
// block devices.
//
// The behaviour reproduces what vmdb2 gets from parted 3.5 (Debian bookworm)
// for `mklabel`, `mkpart` and `set`: the same sectors, MBR system ids, GPT
// type GUIDs, names and attribute bits, as checked by the tests against the
// real parted with `sfdisk -J`. All identifiers (GPT disk and partition GUIDs,
// the MBR disk signature) come from the caller; nothing here is random.
//
// Tables are written through: each call that changes the table writes it
// before returning, so a build step opens the disk, makes one change and
// closes it. Differences from parted: the MBR boot code area is left zero on
// a fresh msdos label (parted writes a small chain-loader there), block
// devices are aligned to 1 MiB whatever their reported topology, and
// extended/logical msdos partitions are not supported.
package partition
