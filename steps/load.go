package steps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// RawSpec is a spec as read from YAML, before templating.
type RawSpec struct {
	File  string   // the name used in messages (path, or "<stdin>")
	Steps []*Value // one mapping per step
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Load parses spec text with vmdb2's YAML 1.1 reading and checks its shape:
// a mapping with a `steps` list of mappings. file is used in messages only.
func Load(file string, data []byte) (*RawSpec, Diagnostics) {
	errAt := func(line int, msg string) (*RawSpec, Diagnostics) {
		return nil, Diagnostics{{File: file, Line: line, Msg: msg}}
	}
	if line, msg := badText(data); msg != "" {
		return errAt(line, msg)
	}
	doc, line, msg := decodeOne(data)
	if msg != "" {
		return errAt(line, msg)
	}
	budget := 200000 // values; real specs have a few thousand
	root, err := convertNode(doc, 0, &budget)
	if err != nil {
		return errAt(lineFromConvertError(err))
	}
	sv, line, msg := stepsList(root)
	if msg != "" {
		return errAt(line, msg)
	}
	var ds Diagnostics
	spec := &RawSpec{File: file}
	for _, item := range sv.List {
		if item.Kind != Map {
			ds = append(ds, Diagnostic{File: file, Line: item.Line, Msg: fmt.Sprintf("each step must be a mapping of keys (like `- mkimg: x.img`), not a %s", item.Kind)})
			continue
		}
		if len(item.Map) == 0 {
			ds = append(ds, Diagnostic{File: file, Line: item.Line, Msg: "empty step"})
			continue
		}
		spec.Steps = append(spec.Steps, item)
	}
	return spec, ds
}

// decodeOne decodes the one YAML document data must hold, or says at
// which line it fails.
func decodeOne(data []byte) (doc *yaml.Node, line int, msg string) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	doc = new(yaml.Node)
	if err := dec.Decode(doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 1, "spec is empty; it needs a top-level `steps:` list"
		}
		line, msg := yamlErrorLine(err)
		if strings.Contains(msg, "tab character") {
			line = firstTabIndent(data, line)
			msg += " (indent with spaces, not tabs)"
		}
		return nil, line, "YAML syntax error: " + msg
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, extra.Line, "a spec file must hold one YAML document, found a second one"
	} else if !errors.Is(err, io.EOF) {
		line, msg := yamlErrorLine(err)
		return nil, line, "YAML syntax error: " + msg
	}
	return doc, 0, ""
}

// stepsList is the value of the spec's `steps:` key, which must be a list,
// or says why the spec has none.
func stepsList(root *Value) (*Value, int, string) {
	if root.Kind != Map {
		return nil, root.Line, fmt.Sprintf("the spec must be a mapping with a `steps:` list, not a %s", root.Kind)
	}
	stepsEntry := root.entry("steps")
	if stepsEntry == nil {
		return nil, root.Line, "the spec has no `steps:` key; vmdb2 specs are a mapping with a `steps:` list"
	}
	if sv := stepsEntry.Value; sv.Kind != List {
		return nil, stepsEntry.KeyLine, fmt.Sprintf("`steps:` must be a list of steps, not a %s", sv.Kind)
	}
	return stepsEntry.Value, 0, ""
}

// badText finds the first byte sequence YAML refuses without saying where:
// invalid UTF-8, NUL and the control characters YAML does not allow
// (everything below space but tab, LF and CR; DEL; C1 codes but NEL; a
// byte-order mark after the start; U+FFFE and U+FFFF). It returns its line
// and a message, or "" when the text is fine.
func badText(data []byte) (int, string) {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return line, fmt.Sprintf("the spec is not UTF-8 text: byte 0x%02x at column %d; save the file as UTF-8", data[i], col)
		case r == 0:
			return line, fmt.Sprintf("the spec holds a NUL byte at column %d; remove it (is this a text file?)", col)
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r == 0x7f, r >= 0x80 && r <= 0x9f && r != 0x85, r == 0xfffe, r == 0xffff, r == 0xfeff && i > 0:
			return line, fmt.Sprintf("the spec holds the control character U+%04X at column %d, which YAML does not allow; remove it or write it as an escape in a double-quoted string (\"\\u%04X\")", r, col, r)
		}
		if r == '\n' {
			line, col = line+1, 0
		}
		i += n
		col++
	}
	return 0, ""
}

func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimSpace(msg)
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

var convertLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

func lineFromConvertError(err error) (int, string) {
	if m := convertLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, err.Error()
}

// firstTabIndent finds the first line, from line from on, whose indentation
// holds a tab: yaml.v3 reports the line where the enclosing block began,
// which is less useful than the offending line.
func firstTabIndent(data []byte, from int) int {
	for i, line := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return from
}
