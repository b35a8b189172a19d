package fs

import (
	"fmt"
	"slices"
	"strings"
)

// types maps every filesystem type a `mkfs` step may name to the package
// that builds it.
var types = map[string]string{
	"ext2":     "fs/ext",
	"ext3":     "fs/ext",
	"ext4":     "fs/ext",
	"vfat":     "fs/fat",
	"btrfs":    "fs/btrfs",
	"xfs":      "fs/xfs",
	"f2fs":     "fs/f2fs",
	"squashfs": "fs/squashfs",
	"swap":     "fs/swap",
}

// Types returns the supported filesystem types, sorted.
func Types() []string {
	out := make([]string, 0, len(types))
	for t := range types {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Supported returns nil when fsType can be built from a staging directory,
// else an error naming the supported types, for the planner to report
// before anything runs.
func Supported(fsType string) error {
	if _, ok := types[fsType]; ok {
		return nil
	}
	hint := ""
	switch strings.ToLower(fsType) {
	case "fat", "fat16", "fat32", "msdos", "vfat":
		hint = ` (write "vfat"; the FAT size follows from the partition size)`
	case "ext":
		hint = ` (write "ext2", "ext3" or "ext4")`
	case "linux-swap", "swapfs":
		hint = ` (write "swap")`
	}
	return fmt.Errorf("unsupported filesystem type %q%s: supported types are %s",
		fsType, hint, strings.Join(Types(), ", "))
}

// HoldsFiles reports whether a filesystem of type fsType can be mounted and
// filled (false for swap, whose region has no content).
func HoldsFiles(fsType string) bool {
	return fsType != "swap"
}
