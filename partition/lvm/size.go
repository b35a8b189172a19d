package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// unitShift are lvcreate -L's unit suffixes (binary multiples; upper or
// lower case alike); "s" is 512-byte sectors, handled apart.
var unitShift = map[byte]uint{'b': 0, 'k': 10, 'm': 20, 'g': 30, 't': 40, 'p': 50, 'e': 60}

// IsFill reports whether size is vmdb2's "fill" (all free extents).
func IsFill(size string) bool {
	return strings.EqualFold(strings.TrimSpace(size), "fill") || strings.EqualFold(size, "100%FREE")
}

// ParseSize reads a size as `lvcreate -L` does: a number (decimals
// allowed), optionally followed by one of b s k m g t p e (either case;
// binary multiples, s = 512-byte sectors); MiB without a suffix.
func ParseSize(size string) (int64, error) {
	s := strings.TrimSpace(size)
	if s == "" {
		return 0, fmt.Errorf("size is empty")
	}
	unit := byte('m')
	if c := s[len(s)-1] | 0x20; c >= 'a' && c <= 'z' {
		unit, s = c, s[:len(s)-1]
	}
	mult := float64(SectorSize)
	if unit != 's' {
		shift, ok := unitShift[unit]
		if !ok {
			return 0, fmt.Errorf("size %q: unknown unit %q (lvcreate -L takes b, s, k, m, g, t, p or e)", size, size[len(size)-1])
		}
		mult = float64(uint64(1) << shift)
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || s[0] == '+' || strings.ContainsAny(s, "eEnN") {
		return 0, fmt.Errorf("size %q is not a positive number with an optional unit (e.g. 4G, 512m, 100%%FREE)", size)
	}
	if b := n * mult; b < 1<<62 {
		return int64(b + 0.5), nil
	}
	return 0, fmt.Errorf("size %q is too large", size)
}

// Extents is the number of extents of extentSize holding size bytes,
// rounded up as lvcreate does.
func Extents(size, extentSize int64) int64 { return (size + extentSize - 1) / extentSize }
