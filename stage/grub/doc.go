// Package grub makes a target tree bootable with GRUB without grub-install
// and without a block device: it builds GRUB's core images with the
// target's own grub-mkimage, writes /boot/grub/grub.cfg with the target's
// own grub-mkconfig, and edits /etc/default/grub as vmdb2 does.
//
// Every tool runs inside the build's user namespace with the target tree as
// its root (see package stage/userns), so the GRUB that builds the images is
// the GRUB whose modules are in the tree, and nothing on the host is
// mounted or changed.
//
//   - BIOS: [BuildBIOS] runs `grub-mkimage -O i386-pc` with biosdisk,
//     part_msdos, part_gpt, the modules that read the filesystem holding
//     /boot/grub (its filesystem's, and lvm when it is on an LV) and the
//     commands a generated grub.cfg uses built in, an early config that
//     finds that filesystem by UUID (with a hint for its GRUB drive), and
//     the static prefix as a fallback: (hd0,msdosN)/boot/grub for /boot on
//     the root filesystem, (hd0,msdosN)/grub for a separate /boot,
//     (lvmid/VGUUID/LVUUID)/… on an LV (see [BootConfig]). It returns core.img and the target's boot.img, which
//     package partition/bootcode writes into the image.
//   - UEFI: [BuildEFI] runs `grub-mkimage -O x86_64-efi` (or the
//     architecture's EFI target) with the same kind of early config;
//     [InstallEFI] writes the result as EFI/BOOT/BOOTX64.EFI (the removable
//     media path firmware boots without NVRAM entries) and
//     EFI/debian/grubx64.efi into the ESP's staging directory.
//   - All of them leave /boot/grub as grub-install does (see
//     [BootDirFiles]): the platform's modules and data files in
//     /boot/grub/<platform>/ (so that `insmod` in grub.cfg finds every
//     module) with the core image and its early config (load.cfg), the
//     locales, unicode.pf2, the starfield theme when installed, and a
//     grubenv made by the target's grub-editenv.
//   - [MkConfig] runs the target's `grub-mkconfig -o /boot/grub/grub.cfg`.
//     grub-mkconfig and its /etc/grub.d scripts ask grub-probe about the
//     device holding / and /boot; with no block device that would fail. In
//     the namespace only, a small shell script is bind-mounted over
//     /usr/sbin/grub-probe that answers from what the build knows about
//     each filesystem of the target (a [Layout]: mount point, UUID, type,
//     partition table and number, LV and LUKS layers; see [ProbeScript]),
//     and the device names it hands out (/dev/disk/by-uuid/<UUID>,
//     /dev/mapper/NAME) are made to exist in the namespace's private /dev
//     (10_linux only writes root=UUID=… when the by-uuid path exists, and
//     root=/dev/mapper/VG-LV for an LV when that does). grub-mkrelpath is
//     replaced the same way (the real one would answer with the stage's
//     host path, as the namespace's root is a bind mount of it). Nothing of this is left in the tree: in the booted
//     system, update-grub (run by kernel updates) uses the real grub-probe
//     against the real disk.
//   - [EditDefault] edits /etc/default/grub's content in place as vmdb2
//     0.41's grub step does (kernel parameters, GRUB_TIMEOUT, serial
//     console).
//
// The host's grub-mkimage is never used: a host GRUB of another version
// than the target's modules makes images that fail at boot with
// "symbol not found". A consequence is that a tree of a foreign
// architecture needs qemu-user (binfmt) on the host to run its
// grub-mkimage.
//
// Every path into the target tree or the ESP's directory is resolved inside
// that tree (package stage's Root): a symbolic link there, even an absolute
// one, never leads to a host file. Files are read from the target, and
// back from the work directory the target's tools write into, only when
// they are regular files (a FIFO or a device node is not opened), and the
// ESP's files are written as regular files, never through a link.
//
// Secure Boot: an image from grub-mkimage is signed by nobody. When the
// target has Debian's signed GRUB (and shim), [FindSecureBoot] and
// [SecureBootLayout] give the ESP files Debian's grub-install
// --uefi-secure-boot would write (see secureboot.go).
package grub
