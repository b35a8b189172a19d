package bootstrap

import (
	"bytes"
	"strings"
)

// An apt run that installs a kernel and initramfs-tools together makes the
// initramfs twice: the kernel's postinst runs the initramfs-tools hook in
// /etc/kernel/postinst.d (update-initramfs -c), then dpkg's
// update-initramfs trigger, activated by initramfs-tools, udev and the
// others, makes it again (update-initramfs -u). AptInstall runs apt with
// INITRD=No, which the initramfs-tools and dracut hooks read as "this
// kernel needs no initramfs", so only the trigger is left, and it updates
// only initramfs images that exist; after apt, each kernel that appeared
// in the run without an initramfs gets one, made once from the finished
// tree, from what the trigger would have seen. INITRD=No also makes the
// kernel's postinst call to linux-base's linux-update-symlinks leave out
// the /initrd.img and /initrd.img.old links, so the deferred run first
// calls it again as the postinst did (install VERSION IMAGE, INITRD
// unset): it keeps the /vmlinuz links as they are and adds the initrd
// links, the same ones a run without INITRD=No makes.
//
// A kernel in /boot is vmlinuz-VERSION or vmlinux-VERSION: Debian names
// the image vmlinux on ppc64el, riscv64 and the other architectures whose
// kernel is not compressed, and both scripts look for either.

// initrdEnv is added to the environment of apt's install run.
const initrdEnv = "INITRD=No"

// listKernelsScript prints the versions of the kernels in /boot.
const listKernelsScript = `for k in /boot/vmlinuz-* /boot/vmlinux-*; do [ -f "$k" ] && echo "${k#/boot/vmlinu?-}"; done; true`

// deferredHooksScript makes the initramfs of each kernel in /boot that is
// not among its arguments and has none: it runs the hooks the kernel's
// postinst ran with INITRD=No, with the arguments the postinst gives them.
// When /etc/kernel/postinst.d holds only hooks that do not read the
// initramfs (apt-auto-removal, dkms, update-grub before GRUB is set up),
// the initramfs hooks alone are run again; any other hook (one that copies
// the initramfs to firmware, an ESP, ...) ran without it, so all of them
// are run again, in run-parts' order.
const deferredHooksScript = `set -e
d=/etc/kernel/postinst.d
all=
for h in "$d"/*; do
	[ -e "$h" ] || continue
	case "${h##*/}" in
	initramfs-tools|dracut|apt-auto-removal|dkms) ;;
	zz-update-grub) [ -e /boot/grub/grub.cfg ] && all=1 ;;
	*) all=1 ;;
	esac
done
for k in /boot/vmlinuz-* /boot/vmlinux-*; do
	[ -f "$k" ] || continue
	v=${k#/boot/vmlinu?-}
	for old in "$@"; do [ "$old" = "$v" ] && continue 2; done
	[ -e "/boot/initrd.img-$v" ] && continue
	if command -v linux-update-symlinks >/dev/null; then
		linux-update-symlinks install "$v" "$k"
	fi
	if [ -n "$all" ]; then
		run-parts --report --exit-on-error --arg="$v" --arg="$k" "$d"
		continue
	fi
	for h in initramfs-tools dracut; do
		if [ -x "$d/$h" ]; then "$d/$h" "$v" "$k"; fi
	done
done
`

// kernelVersions returns the versions of the kernels in the target's /boot,
// listed inside the target.
func (a *aptRunner) kernelVersions() ([]string, error) {
	var out bytes.Buffer
	if err := a.runIn([]string{"/bin/sh", "-c", listKernelsScript}, a.env, nil, &out); err != nil {
		return nil, err
	}
	return strings.Fields(out.String()), nil
}

// makeDeferredInitramfs runs the deferred initramfs hooks for the kernels
// not in before.
func (a *aptRunner) makeDeferredInitramfs(before []string) error {
	argv := append([]string{"/bin/sh", "-c", deferredHooksScript, "vmdb2-initramfs"}, before...)
	return a.runIn(argv, a.env, nil, nil)
}
