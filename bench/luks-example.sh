#!/bin/sh
# luks-example.sh: builds examples/luks-lvm.vmdb (4 GiB image, LVM on a
# LUKS2 container of about 3.7 GiB) and prints how long the cryptsetup
# step's teardown took (encrypting the cleartext into the container), the
# whole build's time and the largest peak resident memory of vmdb2 or any
# program it ran (GNU time's maximum RSS).
#
#	sh bench/luks-example.sh [ROOTFS-TARBALL]
set -eu
work=$(mktemp -d /var/tmp/vmdb2-luksbench-XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/vmdb2" ./cmd/vmdb2
tarball=${1:-$work/rootfs.tar.zst}
start=$(date +%s)
/usr/bin/time -f '%M' -o "$work/rss" "$work/vmdb2" examples/luks-lvm.vmdb \
	--output "$work/luks-lvm.img" --rootfs-tarball "$tarball" --log "$work/build.log" >/dev/null
end=$(date +%s)
enc=$(grep -E 'Teardown [0-9]+/[0-9]+ done in' "$work/build.log" | sed -n 's/.*Teardown \([0-9]*\)\/.*done in \(.*\)s$/\1 \2/p' |
	while read -r n s; do
		if grep -q "Teardown $n/.*: cryptsetup" "$work/build.log"; then echo "$s"; fi
	done)
echo "encrypting the container (cryptsetup teardown): ${enc:-?} s"
echo "whole build: $((end - start)) s; peak RSS $(($(cat "$work/rss") / 1024)) MiB"
