// Package boottest is test support for booting disk images: it boots a raw
// image in qemu-system-x86_64 under TCG (no KVM needed) with SeaBIOS or
// OVMF, in snapshot mode so the image file is never modified, reads the
// serial console, waits for patterns, logs in on the serial getty and runs
// shell commands, returning their output.
//
// A VM is always killed by Close (and by the end of the context given to
// Boot); QEMU also gets SIGKILL if the test process dies first.
//
// Host packages: qemu-system-x86 (qemu-system-x86_64, SeaBIOS) and ovmf
// (/usr/share/OVMF/OVMF_CODE_4M.fd and OVMF_VARS_4M.fd) for UEFI.
package boottest
