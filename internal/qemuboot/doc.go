// Package qemuboot boots raw disk images in QEMU and talks to their serial
// console: SeaBIOS or OVMF on qemu-system-x86_64, AAVMF on
// qemu-system-aarch64, AAVMF32 on qemu-system-arm, SLOF on
// qemu-system-ppc64, or, on qemu-system-aarch64's virt machine without firmware, a Linux kernel and
// initrd that QEMU loads itself (BootKernel), always in snapshot mode
// so the image file is never modified. It waits for patterns on the
// console, logs in on the serial getty and runs shell commands, returning
// their output. The tests boot their images with it and vmdb2's
// --boot-check waits with it for a login prompt.
//
// A VM is always killed by Close (and by the end of the context given to
// Boot); QEMU also gets SIGKILL if the process that started it dies first.
//
// Host packages: qemu-system-x86 (qemu-system-x86_64, SeaBIOS) and ovmf
// (/usr/share/OVMF/OVMF_CODE_4M.fd and OVMF_VARS_4M.fd) for UEFI;
// qemu-system-arm and qemu-efi-aarch64 for arm64, qemu-system-arm and
// qemu-efi-arm for armhf; qemu-system-ppc for ppc64el.
package qemuboot
