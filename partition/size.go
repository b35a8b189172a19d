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
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("invalid image size %q: %s (use bytes or a suffix: k, M, G, T, P, E, e.g. 4G or 1.5G)", s, why)
	}
	if s == "" {
		return bad("empty")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\n\r\v\f") {
		return bad("contains whitespace")
	}
	if s[0] == '-' || s[0] == '+' {
		return bad("a sign is not allowed")
	}
	var val *big.Rat
	rest := ""
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		v, ok := new(big.Int).SetString(s[2:], 16)
		if !ok {
			return bad("not a hexadecimal number")
		}
		val = new(big.Rat).SetInt(v)
	} else {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		intPart := s[:i]
		frac := ""
		if i < len(s) && s[i] == '.' {
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			frac = s[i+1 : j]
			i = j
		}
		if intPart == "" {
			return bad("not a number")
		}
		num := intPart
		if frac != "" {
			num += "." + frac
		}
		if len(num) > 64 {
			return bad("too long")
		}
		var ok bool
		val, ok = new(big.Rat).SetString(num)
		if !ok {
			return bad("not a number")
		}
		rest = s[i:]
		if frac != "" && rest == "" || (frac != "" && strings.EqualFold(rest, "b")) {
			return bad("a fraction needs a unit suffix such as K, M or G")
		}
	}
	mul, ok := sizeSuffix(rest)
	if !ok {
		return bad(fmt.Sprintf("unknown suffix %q", rest))
	}
	val.Mul(val, new(big.Rat).SetInt(mul))
	// Round half up to a whole byte, then up to a 512-byte sector.
	n := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(val.Num(), big.NewInt(2)), val.Denom()), new(big.Int).Mul(val.Denom(), big.NewInt(2)))
	n.Add(n, big.NewInt(511))
	n.Quo(n, big.NewInt(512))
	n.Mul(n, big.NewInt(512))
	if n.Sign() <= 0 {
		return bad("the size must be greater than zero")
	}
	if !n.IsInt64() || n.Int64() > math.MaxInt64-511 {
		return bad("the size must be less than 8 EiB")
	}
	return n.Int64(), nil
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
