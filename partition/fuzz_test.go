package partition

import (
	"strings"
	"testing"
)

// FuzzParseImageSize checks that ParseImageSize never panics, that accepted
// sizes are positive whole sectors, and that errors say what was wrong.
func FuzzParseImageSize(f *testing.F) {
	for _, s := range []string{"4G", "1.5G", "2000M", "100k", "1024", "0x1000", "4GiB", "1MB", "", "-1", "0", "8E", "1e3", " 1G", "1.k", "9999999999999999999999E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseImageSize(s)
		if err != nil {
			if n != 0 || !strings.Contains(err.Error(), "invalid image size") {
				t.Fatalf("ParseImageSize(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n <= 0 || n%512 != 0 {
			t.Fatalf("ParseImageSize(%q) = %d: not a positive multiple of 512", s, n)
		}
	})
}

// FuzzParsePosition checks that parted locations never panic and that an
// accepted location lies on the device with its fuzz around it.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0%", "100%", "1MiB", "-1s", "2048s", "1G", "10", "-0", "1.5.5GB", "--1", "1e400", "-9e18MB"} {
		f.Add(s, int64(8388608))
	}
	f.Fuzz(func(t *testing.T, s string, length int64) {
		if length < 2 || length > 1<<40 {
			return
		}
		p, err := parsePosition(s, 512, length)
		if err != nil {
			return
		}
		if p.sector < 0 || p.sector >= length || !p.fuzz.contains(p.sector) || p.fuzz.start < 0 || p.fuzz.end >= length {
			t.Fatalf("parsePosition(%q, %d) = %+v", s, length, p)
		}
	})
}
