package bootstrap

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// CheckEmpty returns nil if dir is missing or holds nothing but lost+found,
// as vmdb2's debootstrap step requires unless require_empty_target is
// false. Otherwise the error's message is vmdb2's:
//
//	debootstrap target /stage/root is a not an empty directory: ['etc', 'usr']
//
// (the names sorted, in Python's list notation, and "a not" sic).
func CheckEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap: checking that the target is empty: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "lost+found" {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return fmt.Errorf("debootstrap target %s is a not an empty directory: %s", dir, pyList(names))
}

// pyList formats names as Python's repr of a list of str.
func pyList(names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = pyRepr(n)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func pyRepr(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
