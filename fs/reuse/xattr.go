package reuse

import (
	"fmt"
	"strconv"
	"strings"
)

// parseXattrs reads debugfs's ea_list output: after "Extended
// attributes:", one line per attribute, `  NAME (LEN) = VALUE`, VALUE
// either a quoted string (with \", \\ and \ooo escapes) or hex bytes
// separated by spaces. The name is printed with the same escapes, unquoted.
// The decoded value must have LEN bytes.
func parseXattrs(out string) ([]Xattr, error) {
	var list []Xattr
	for _, line := range strings.Split(out, "\n") {
		if line == "" || line == "Extended attributes:" {
			continue
		}
		if !strings.HasPrefix(line, "  ") {
			return nil, fmt.Errorf("cannot read debugfs's attribute line %q", line)
		}
		rawName, rest, ok := strings.Cut(line[2:], " (")
		lenText, val, ok2 := strings.Cut(rest, ") = ")
		n, err := strconv.Atoi(lenText)
		if !ok || !ok2 || err != nil {
			return nil, fmt.Errorf("cannot read debugfs's attribute line %q", line)
		}
		name, err := unescape(rawName)
		if err != nil {
			return nil, err
		}
		var value []byte
		if strings.HasPrefix(val, "\"") && strings.HasSuffix(val, "\"") && len(val) >= 2 {
			s, err := unescape(val[1 : len(val)-1])
			if err != nil {
				return nil, err
			}
			value = []byte(s)
		} else {
			for _, h := range strings.Fields(val) {
				b, err := strconv.ParseUint(h, 16, 8)
				if err != nil {
					return nil, fmt.Errorf("attribute %s: cannot read value %q", name, val)
				}
				value = append(value, byte(b))
			}
		}
		if len(value) != n {
			return nil, fmt.Errorf("attribute %s: %d bytes read, %d listed", name, len(value), n)
		}
		if name == "system.data" {
			continue // inline data: the file's content, not an attribute
		}
		list = append(list, Xattr{Name: name, Value: value})
	}
	return list, nil
}

// unescape undoes debugfs's \", \\ and \ooo escapes.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case i+3 < len(s) && isOctal(s[i+1:i+4]):
			n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(n))
			i += 3
		default:
			return "", fmt.Errorf("cannot read debugfs's escaped text %q", s)
		}
	}
	return b.String(), nil
}

func isOctal(s string) bool {
	for _, c := range s {
		if c < '0' || c > '7' {
			return false
		}
	}
	return len(s) == 3
}
