// Package partition computes disk geometry the way GNU parted does and writes
// msdos and GPT partition tables, flags and boot code into image files or
// block devices.
package partition
