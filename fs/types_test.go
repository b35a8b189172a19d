package fs

import (
	"strings"
	"testing"
)

func TestSupported(t *testing.T) {
	for _, typ := range []string{"ext2", "ext3", "ext4", "vfat", "btrfs", "xfs", "f2fs", "squashfs", "swap"} {
		if err := Supported(typ); err != nil {
			t.Errorf("Supported(%q) = %v", typ, err)
		}
	}
	err := Supported("fat32")
	if err == nil || !strings.Contains(err.Error(), `"vfat"`) || !strings.Contains(err.Error(), "btrfs, ext2, ext3, ext4, f2fs, squashfs, swap, vfat, xfs") {
		t.Errorf("Supported(fat32) = %v", err)
	}
	if Supported("ntfs") == nil || Supported("") == nil || Supported("EXT4") == nil {
		t.Error("unknown types accepted")
	}
	if HoldsFiles("swap") || !HoldsFiles("ext4") {
		t.Error("HoldsFiles")
	}
}
