package steps

import "fmt"

// The vmdb2 releases whose results a build can give. Where vmdb2 0.41 (the
// default: what Debian stable and unstable ship) and 0.26 (bookworm's)
// write different images, Settings.Compat chooses; everything else is the
// same in both. The README's differences table lists each place.
const (
	Compat041 = "0.41"
	Compat026 = "0.26"
)

// ParseCompat checks a --compat value: "0.41", "0.40" (the same images)
// or "0.26"; "" is 0.41.
func ParseCompat(v string) (string, error) {
	switch v {
	case "", Compat041, "0.40":
		return Compat041, nil
	case Compat026:
		return Compat026, nil
	}
	return "", fmt.Errorf("--compat %q: the vmdb2 versions whose images can be made are 0.41 (the default; 0.40 gives the same) and 0.26", v)
}

// compat026 says whether the build gives vmdb2 0.26's images.
func (b *Build) compat026() bool { return b.Settings.Compat == Compat026 }
