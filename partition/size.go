package partition

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// ParseImageSize parses an mkimg size the way `qemu-img create -f raw FILE
// SIZE` does, and returns the size of the file qemu-img would create.
//
// Accepted: a decimal number of bytes ("1073741824", or hexadecimal
// "0x40000000" without suffix or fraction), optionally followed by one
// suffix: b/B (bytes), k/K, M, G, T, P, E (binary multiples, any case, as in
// qemu), or the friendlier spellings KiB, MiB, GiB, TiB, PiB, EiB (binary)
// and kB, MB, GB, TB, PB, EB (decimal, powers of 1000). A fraction is
// allowed with a suffix ("1.5G"); like qemu the exact product is rounded to
// the nearest byte (halves up). qemu-img's raw driver then rounds the size
// up to a whole 512-byte sector, and so does ParseImageSize: "1000" gives
// 1024. Whitespace, signs, empty or zero sizes, unknown suffixes and sizes of
// 8 EiB or more are errors.
func ParseImageSize(s string) (int64, error) {
	n, why := imageSize(s)
	if why != "" {
		return 0, fmt.Errorf("invalid image size %q: %s (use bytes or a suffix: k, M, G, T, P, E, e.g. 4G or 1.5G)", s, why)
	}
	return n, nil
}

// imageSize is ParseImageSize's work; a refused size gives why.
func imageSize(s string) (n int64, why string) {
	switch {
	case s == "":
		return 0, "empty"
	case strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\n\r\v\f"):
		return 0, "contains whitespace"
	case s[0] == '-' || s[0] == '+':
		return 0, "a sign is not allowed"
	}
	val, rest, why := sizeNumber(s)
	if why != "" {
		return 0, why
	}
	mul, ok := sizeSuffix(rest)
	if !ok {
		return 0, fmt.Sprintf("unknown suffix %q", rest)
	}
	return wholeSectors(val.Mul(val, new(big.Rat).SetInt(mul)))
}

// sizeNumber reads the number at the start of s: hexadecimal after 0x
// (the whole of s), else decimal with an optional fraction, which needs a
// unit suffix. rest is what follows the number.
func sizeNumber(s string) (val *big.Rat, rest, why string) {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		v, ok := new(big.Int).SetString(s[2:], 16)
		if !ok {
			return nil, "", "not a hexadecimal number"
		}
		return new(big.Rat).SetInt(v), "", ""
	}
	intPart, frac, rest := splitDecimal(s)
	if intPart == "" {
		return nil, "", "not a number"
	}
	num := intPart
	if frac != "" {
		num += "." + frac
	}
	if len(num) > 64 {
		return nil, "", "too long"
	}
	val, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, "", "not a number"
	}
	if frac != "" && (rest == "" || strings.EqualFold(rest, "b")) {
		return nil, "", "a fraction needs a unit suffix such as K, M or G"
	}
	return val, rest, ""
}

// splitDecimal splits s into its leading digits, the digits after a
// following '.', and the rest.
func splitDecimal(s string) (intPart, frac, rest string) {
	digits := func(from int) int {
		for from < len(s) && s[from] >= '0' && s[from] <= '9' {
			from++
		}
		return from
	}
	i := digits(0)
	intPart = s[:i]
	if i < len(s) && s[i] == '.' {
		j := digits(i + 1)
		frac = s[i+1 : j]
		i = j
	}
	return intPart, frac, s[i:]
}

// wholeSectors rounds val half up to a whole byte, then up to a 512-byte
// sector, as qemu-img's raw driver does.
func wholeSectors(val *big.Rat) (int64, string) {
	two := big.NewInt(2)
	n := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(val.Num(), two), val.Denom()), new(big.Int).Mul(val.Denom(), two))
	n.Add(n, big.NewInt(511))
	n.Quo(n, big.NewInt(512))
	n.Mul(n, big.NewInt(512))
	if n.Sign() <= 0 {
		return 0, "the size must be greater than zero"
	}
	if !n.IsInt64() || n.Int64() > math.MaxInt64-511 {
		return 0, "the size must be less than 8 EiB"
	}
	return n.Int64(), ""
}

func sizeSuffix(s string) (*big.Int, bool) {
	if s == "" || s == "b" || s == "B" {
		return big.NewInt(1), true
	}
	exp := map[byte]int64{'k': 1, 'm': 2, 'g': 3, 't': 4, 'p': 5, 'e': 6}
	e, ok := exp[strings.ToLower(s[:1])[0]]
	if !ok {
		return nil, false
	}
	base := int64(1024)
	switch {
	case len(s) == 1:
	case len(s) == 3 && (s[1] == 'i' || s[1] == 'I') && (s[2] == 'B' || s[2] == 'b'):
	case len(s) == 2 && s[1] == 'B':
		base = 1000
	default:
		return nil, false
	}
	return new(big.Int).Exp(big.NewInt(base), big.NewInt(e), nil), true
}

// MaxImageSize is the largest image file CheckImageSize accepts: 1 PiB.
// qemu-img would take up to 8 EiB, but no disk is that large, a sparse file
// of a few PiB is refused by the usual host filesystems only once it is
// created (ext4 stops at 16 TiB), and a size like 100P is a typo.
const MaxImageSize = 1 << 50

// CheckImageSize refuses image sizes beyond MaxImageSize; text is the size
// as written, for the message.
func CheckImageSize(text string, n int64) error {
	if n > MaxImageSize {
		return fmt.Errorf("image size %q is %.4g PiB, more than the 1 PiB this program builds as an image file; check the unit (e.g. 100G, not 100P)",
			text, float64(n)/(1<<50))
	}
	return nil
}
