#!/bin/sh
# vmdb2-from-cache.sh: the commands vmdb2 0.26 runs for
# bench/from-cache.vmdb, in its order and with its arguments (its
# unpack-rootfs plugin runs tar; fstab; the mount teardown's zerofree when
# installed), on a loop device mounted on the host: the warm counterpart of
# bench/vmdb2-equivalent.sh, to compare with a build from a rootfs cache.
# vmdb2 caches rootfs tarballs as .tar.gz; given this program's .tar.zst,
# tar decompresses zstd, which is faster than gzip (in vmdb2's favour).
# Needs root, loop devices and an ext4 driver.
#
#	sudo sh bench/vmdb2-from-cache.sh ROOTFS-TARBALL
set -eu
tarball=$1
work=$(mktemp -d /var/tmp/vmdb2-from-cache-XXXXXX)
loop=
cleanup() {
	set +e
	mountpoint -q "$work/mnt" && umount "$work/mnt"
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
start=$(date +%s.%N)

img=$work/cached.img
truncate -s 3G "$img"
parted -s "$img" mklabel msdos
parted -s "$img" -- mkpart primary ext2 1MiB 100%
loop=$(losetup --show -f -o 1048576 --sizelimit $((3 * 1024 * 1024 * 1024 - 1048576)) "$img")
mkfs -t ext4 -q "$loop"
mkdir "$work/mnt"
mount "$loop" "$work/mnt"

tar -C "$work/mnt" -xf "$tarball" --numeric-owner

uuid=$(blkid -s UUID -o value "$loop")
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" >"$work/mnt/etc/fstab"

umount "$work/mnt"
if command -v zerofree >/dev/null; then zerofree -v "$loop"; fi
losetup -d "$loop"
loop=

end=$(date +%s.%N)
echo "vmdb2-from-cache build (loop device, tar, fstab): $(echo "$end - $start" | bc) s"
