// Package lvm writes and reads LVM2 physical volumes without device-mapper:
// the label in sector 1, the PV header, the text metadata area and the
// volume group's metadata in lvm2's text format, as pvcreate, vgcreate
// and lvcreate with their default settings would leave them. A logical
// volume is a list of linear segments, each a run of extents on one PV, so
// its contents are byte ranges of the PVs.
//
// Only the current metadata is written (at the start of the metadata
// area's circular buffer); the real tools also leave the earlier versions
// of each commit behind it, which lvm never reads again.
package lvm
