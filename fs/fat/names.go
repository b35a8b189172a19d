package fat

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxLongName is the longest name VFAT can store, in UTF-16 code units.
const maxLongName = 255

// shortChar reports whether c may appear in a short (8.3) name as it is.
// Only ASCII is used: anything else is replaced when a basis name is made.
func shortChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()-@^_`{}~", c) >= 0
}

// exactShortName returns the 11-byte directory form of name when name is a
// valid upper-case 8.3 name that needs no long-name entries.
func exactShortName(name string) ([11]byte, bool) {
	var s [11]byte
	base, ext, hasDot := strings.Cut(name, ".")
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 || (hasDot && len(ext) == 0) {
		return s, false
	}
	for i := 0; i < len(base); i++ {
		if !shortChar(base[i]) {
			return s, false
		}
	}
	for i := 0; i < len(ext); i++ {
		if !shortChar(ext[i]) {
			return s, false
		}
	}
	fill11(&s, base, ext)
	return s, true
}

func fill11(s *[11]byte, base, ext string) {
	for i := range s {
		s[i] = ' '
	}
	copy(s[:8], base)
	copy(s[8:], ext)
}

// checkLongName returns an error when name cannot be stored in a VFAT
// directory at all.
func checkLongName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("name is not valid UTF-8")
	}
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("name %q is reserved", name)
	}
	for _, r := range name {
		if r < 0x20 {
			return fmt.Errorf("name contains the control character %U, which FAT cannot store", r)
		}
		if strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("name contains %q, which FAT cannot store", r)
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return fmt.Errorf("name ends with a dot or a space, which FAT drops")
	}
	if n := len(utf16.Encode([]rune(name))); n > maxLongName {
		return fmt.Errorf("name is %d UTF-16 units long; FAT allows %d", n, maxLongName)
	}
	return nil
}

// basisName makes the upper-case base (at most 8 characters) and extension
// (at most 3) of the short name for a long name, the way Windows and Linux
// do: spaces and leading dots dropped, the extension taken after the last
// dot, dots removed from the base, characters not allowed in short names
// replaced by '_'. exact is false when anything but the case changed, which
// means the short name must get a "~N" tail.
func basisName(name string) (base, ext string, exact bool) {
	exact = true
	trimmed := strings.TrimLeft(name, ". ")
	if trimmed != name {
		exact = false
	}
	stem, suffix := trimmed, ""
	if i := strings.LastIndexByte(trimmed, '.'); i >= 0 {
		stem, suffix = trimmed[:i], trimmed[i+1:]
	}
	conv := func(s string, max int) string {
		var b strings.Builder
		for _, r := range s {
			var c byte
			switch {
			case r == ' ' || r == '.':
				exact = false
				continue
			case r >= 'a' && r <= 'z':
				c = byte(r) - 'a' + 'A'
			case r < utf8.RuneSelf && shortChar(byte(r)):
				c = byte(r)
			default:
				c = '_'
				exact = false
			}
			if b.Len() == max {
				exact = false
				break
			}
			b.WriteByte(c)
		}
		return b.String()
	}
	base, ext = conv(stem, 8), conv(suffix, 3)
	if base == "" {
		base, exact = "_", false
	}
	return base, ext, exact
}

// shortNamer hands out the short names of one directory.
type shortNamer struct {
	used map[[11]byte]bool
}

func newShortNamer() *shortNamer { return &shortNamer{used: map[[11]byte]bool{}} }

// reserve records a short name taken by an entry that has no long name.
func (n *shortNamer) reserve(s [11]byte) { n.used[s] = true }

// generate returns an unused short name for a long name: the basis name
// itself when it is exact and free, else the basis with the first free
// "~1", "~2", ... tail (the base shortened to make room).
func (n *shortNamer) generate(name string) ([11]byte, error) {
	var s [11]byte
	base, ext, exact := basisName(name)
	if exact {
		fill11(&s, base, ext)
		if !n.used[s] {
			n.used[s] = true
			return s, nil
		}
	}
	for i := 1; i <= 999999; i++ {
		tail := "~" + strconv.Itoa(i)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		fill11(&s, b+tail, ext)
		if !n.used[s] {
			n.used[s] = true
			return s, nil
		}
	}
	return s, fmt.Errorf("no free short name for %q", name)
}

// lfnChecksum is the checksum of a short name that every long-name entry
// belonging to it carries.
func lfnChecksum(s [11]byte) byte {
	var sum byte
	for _, c := range s {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// lfnSlots is the number of long-name entries name needs.
func lfnSlots(name string) int {
	n := len(utf16.Encode([]rune(name)))
	return (n + 12) / 13
}

// appendLFN appends the long-name entries for name, in on-disk order (the
// last part first), each 32 bytes.
func appendLFN(dst []byte, name string, sum byte) []byte {
	units := utf16.Encode([]rune(name))
	slots := (len(units) + 12) / 13
	// Pad: one 0x0000 terminator when there is room, then 0xFFFF.
	padded := make([]uint16, slots*13)
	for i := range padded {
		switch {
		case i < len(units):
			padded[i] = units[i]
		case i == len(units):
			padded[i] = 0
		default:
			padded[i] = 0xFFFF
		}
	}
	offsets := [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
	for k := slots; k >= 1; k-- {
		var e [32]byte
		e[0] = byte(k)
		if k == slots {
			e[0] |= 0x40
		}
		e[11] = attrLongName
		e[13] = sum
		for j, off := range offsets {
			u := padded[(k-1)*13+j]
			e[off] = byte(u)
			e[off+1] = byte(u >> 8)
		}
		dst = append(dst, e[:]...)
	}
	return dst
}
