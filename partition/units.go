package partition

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A position is a sector parsed from a parted location such as "1MiB", "0%",
// "2048s", "-1s" or "500" (bare numbers are MB), together with the range of
// sectors parted accepts in its place ("fuzz").
type position struct {
	sector int64
	fuzz   span
}

// unitSize returns the size in bytes of one unit for suffix, following
// parted: only the first letter (and an 'i' in second place for IEC units)
// matters, case-insensitively; anything unknown means megabytes.
func unitSize(suffix string, sectorSize, lengthSectors int64) (size int64, name string, err error) {
	s := strings.ToLower(suffix)
	if len(s) > 1 && s[1] == 'i' {
		switch s[0] {
		case 'k':
			return 1 << 10, "KiB", nil
		case 'm':
			return 1 << 20, "MiB", nil
		case 'g':
			return 1 << 30, "GiB", nil
		case 't':
			return 1 << 40, "TiB", nil
		}
	} else if len(s) > 0 {
		switch s[0] {
		case 's':
			return sectorSize, "s", nil
		case 'b':
			return 1, "B", nil
		case 'k':
			return 1000, "kB", nil
		case 'm':
			return 1000 * 1000, "MB", nil
		case 'g':
			return 1000 * 1000 * 1000, "GB", nil
		case 't':
			return 1000 * 1000 * 1000 * 1000, "TB", nil
		case '%':
			return lengthSectors * sectorSize / 100, "%", nil
		case 'c':
			return 0, "", fmt.Errorf("cylinder units are not supported; use s, B, kB, MB, GB, TB, KiB, MiB, GiB, TiB or %%")
		}
	}
	return 1000 * 1000, "MB", nil
}

// leadingFloat returns the longest prefix of s that C's sscanf("%lf") would
// read from it when s holds only digits, '.', ',' and '-'.
func leadingFloat(s string) (float64, bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s[:i], "."), 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

func clip(x, length int64) int64 {
	if x < 0 {
		return 0
	}
	if x > length-1 {
		return length - 1
	}
	return x
}

// parsePosition interprets text the way parted 3.5 does for mkpart's START
// and END on a device of length sectors of sectorSize bytes.
func parsePosition(text string, sectorSize, length int64) (position, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return position{}, fmt.Errorf("empty location: give a number with a unit, e.g. 1MiB, 50%% or 2048s")
	}
	if strings.Count(s, ",") >= 2 {
		return position{}, fmt.Errorf("location %q: cylinder,head,sector locations are not supported", text)
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == ',' || s[i] == '.' || s[i] == '-') {
		i++
	}
	num, suffix := s[:i], s[i:]
	size, unit, err := unitSize(suffix, sectorSize, length)
	if err != nil {
		return position{}, fmt.Errorf("location %q: %w", text, err)
	}
	v, ok := leadingFloat(num)
	if !ok {
		return position{}, fmt.Errorf("location %q: invalid number (expected e.g. 1MiB, 50%%, 2048s or -1s)", text)
	}
	if v > 0 && v < 1 {
		return position{}, fmt.Errorf("location %q: use a smaller unit instead of a value < 1 (parted refuses it too)", text)
	}
	if size <= 0 {
		return position{}, fmt.Errorf("location %q: the device is too small for this unit", text)
	}
	radius := (ceilDiv(size, sectorSize) / 2) - 1
	// parted treats IEC units as exact positions (no fuzz). Percent is
	// fuzzy even when one percent happens to be a power of two.
	if radius < 0 || strings.HasSuffix(unit, "iB") {
		radius = 0
	}
	f := v * float64(size) / float64(sectorSize)
	if math.IsNaN(f) || f > 1<<62 || f < -(1<<62) {
		return position{}, fmt.Errorf("location %q is outside of the device (%d sectors)", text, length)
	}
	sector := int64(f)
	if num != "" && num[0] == '-' {
		sector += length
	}
	lo, hi := clip(sector-radius, length), clip(sector+radius, length)
	if sector-hi > radius || lo-sector > radius {
		return position{}, fmt.Errorf("location %q is outside of the device (%d sectors of %d bytes, last sector %d)",
			text, length, sectorSize, length-1)
	}
	return position{
		sector: clip(sector, length),
		fuzz:   span{lo, hi},
	}, nil
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
