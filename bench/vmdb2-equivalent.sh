#!/bin/sh
# vmdb2-equivalent.sh: the commands vmdb2 0.26 runs for bench/cold.vmdb,
# in its order and with its arguments (as its debootstrap, apt and fstab
# plugins run them: debootstrap, apt with eatmydata, apt-get clean,
# fstab), on a loop device mounted on the host. vmdb2 itself cannot run on
# a kernel without device-mapper (it maps partitions with kpartx); here
# a loop device over the partition's byte range stands in for the mapping,
# which costs the same. This gives the
# "vmdb2 takes about 200 s" figure on this very machine, to compare with
# `go run ./bench/coldbuild`. Needs root, loop devices and an ext4 driver.
#
#	sudo sh bench/vmdb2-equivalent.sh [mirror]
set -eu
mirror=${1:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/vmdb2-equivalent-XXXXXX)
loop=
cleanup() {
	set +e
	for m in "$work/mnt/proc" "$work/mnt"; do
		mountpoint -q "$m" && umount "$m"
	done
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

rx() { awk 'NR>2 && $1 !~ /^lo:/ {s += $2} END {printf "%.0f\n", s}' /proc/net/dev; }
rx0=$(rx)
start=$(date +%s.%N)

img=$work/cold.img
truncate -s 3G "$img"
parted -s "$img" mklabel msdos
parted -s "$img" -- mkpart primary ext2 1MiB 100%
# The partition: 1 MiB to the end (what parted made above).
loop=$(losetup --show -f -o 1048576 --sizelimit $((3 * 1024 * 1024 * 1024 - 1048576)) "$img")
part=$loop
mkfs -t ext4 -q "$part"
mkdir "$work/mnt"
mount "$part" "$work/mnt"

debootstrap --arch amd64 --variant - --components main bookworm "$work/mnt" "$mirror"

in_target() { chroot "$work/mnt" env DEBIAN_FRONTEND=noninteractive "$@"; }
in_target apt-get update
in_target apt-get -y --no-show-progress --no-install-recommends install eatmydata
in_target eatmydata apt-get update
in_target eatmydata apt-get -y --no-show-progress --no-install-recommends install linux-image-amd64
in_target apt-get clean

uuid=$(blkid -s UUID -o value "$part")
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" >"$work/mnt/etc/fstab"

umount "$work/mnt"
# vmdb2's mount teardown zeroes free blocks when zerofree is installed.
if command -v zerofree >/dev/null; then zerofree -v "$part"; fi
losetup -d "$loop"
loop=

end=$(date +%s.%N)
rx1=$(rx)
echo "vmdb2-equivalent build (loop device, debootstrap, apt with eatmydata):" \
	"$(echo "$end - $start" | bc) s, $(( (rx1 - rx0) / 1000000 )) MB received"
