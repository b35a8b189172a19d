package steps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

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
	var ds Diagnostics
	errAt := func(line int, format string, args ...any) {
		ds = append(ds, Diagnostic{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errAt(0, "spec is empty; it needs a top-level `steps:` list")
			return nil, ds
		}
		line, msg := yamlErrorLine(err)
		if strings.Contains(msg, "tab character") {
			line = firstTabIndent(data, line)
			msg += " (indent with spaces, not tabs)"
		}
		errAt(line, "YAML syntax error: %s", msg)
		return nil, ds
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errAt(extra.Line, "a spec file must hold one YAML document, found a second one")
		return nil, ds
	} else if !errors.Is(err, io.EOF) {
		line, msg := yamlErrorLine(err)
		errAt(line, "YAML syntax error: %s", msg)
		return nil, ds
	}

	budget := 200000 // values; real specs have a few thousand
	root, err := convertNode(&doc, 0, &budget)
	if err != nil {
		line, msg := lineFromConvertError(err)
		errAt(line, "%s", msg)
		return nil, ds
	}
	if root.Kind != Map {
		errAt(root.Line, "the spec must be a mapping with a `steps:` list, not a %s", root.Kind)
		return nil, ds
	}
	stepsEntry := root.entry("steps")
	if stepsEntry == nil {
		errAt(root.Line, "the spec has no `steps:` key; vmdb2 specs are a mapping with a `steps:` list")
		return nil, ds
	}
	sv := stepsEntry.Value
	if sv.Kind != List {
		errAt(stepsEntry.KeyLine, "`steps:` must be a list of steps, not a %s", sv.Kind)
		return nil, ds
	}
	spec := &RawSpec{File: file}
	for _, item := range sv.List {
		if item.Kind != Map {
			errAt(item.Line, "each step must be a mapping of keys (like `- mkimg: x.img`), not a %s", item.Kind)
			continue
		}
		if len(item.Map) == 0 {
			errAt(item.Line, "empty step")
			continue
		}
		spec.Steps = append(spec.Steps, item)
	}
	return spec, ds
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
