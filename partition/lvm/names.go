package lvm

import (
	"fmt"
	"strings"
)

// lvm2's name rules (lib/misc/lvm-string.c, lib/metadata/metadata.c).
const maxNameLen = 127

// checkName applies the rules VG and LV names share.
func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", what)
	case len(name) > maxNameLen:
		return fmt.Errorf("%s name %q is longer than %d characters", what, name, maxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%s name %q is not allowed", what, name)
	case name[0] == '-':
		return fmt.Errorf("%s name %q may not start with a hyphen", what, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+_.-", c)) {
			return fmt.Errorf("%s name %q has the character %q; lvm allows only A-Z a-z 0-9 + _ . -", what, name, c)
		}
	}
	return nil
}

// CheckVGName refuses names vgcreate refuses.
func CheckVGName(name string) error {
	return checkName("volume group", name)
}

// reservedLVPrefixes and reservedLVParts are what lvcreate refuses in an
// LV name (names lvm uses for its hidden volumes).
var (
	reservedLVPrefixes = []string{"pvmove", "snapshot"}
	reservedLVParts    = []string{"_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_mimage", "_mlog",
		"_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig"}
)

// CheckLVName refuses names lvcreate refuses.
func CheckLVName(name string) error {
	if err := checkName("logical volume", name); err != nil {
		return err
	}
	for _, p := range reservedLVPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("logical volume name %q starts with %q, which lvm reserves", name, p)
		}
	}
	for _, p := range reservedLVParts {
		if strings.Contains(name, p) {
			return fmt.Errorf("logical volume name %q contains %q, which lvm reserves for its internal volumes", name, p)
		}
	}
	return nil
}
