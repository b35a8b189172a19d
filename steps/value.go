package steps

import (
	"fmt"
	"strconv"
	"strings"
)

// ValueKind is the type a spec value was read as, following YAML 1.1 as
// PyYAML's safe_load (and so vmdb2) reads it.
type ValueKind int

// The value kinds. Null, Float and Date can be read from YAML but are not
// allowed inside steps (vmdb2: "Unknown value type").
const (
	Null ValueKind = iota
	Bool
	Int
	Float
	Date
	String
	List
	Map
)

func (k ValueKind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Int:
		return "integer"
	case Float:
		return "float"
	case Date:
		return "date"
	case String:
		return "string"
	case List:
		return "list"
	case Map:
		return "mapping"
	}
	return "unknown"
}

// Value is one node of a loaded spec with the line it was written on.
type Value struct {
	Kind ValueKind
	Str  string // String value; for other scalars the text as written
	Bool bool
	Int  int64
	List []*Value
	Map  []*Entry
	Line int // 1-based line of the value in the spec file
	// Block is true for literal/folded block scalars, whose text starts on
	// the line after Line.
	Block bool
	// DroppedNewline records that templating removed a final newline (for
	// create-file's legacy `trailing-newline` key).
	DroppedNewline bool
}

// Entry is one key of a mapping, in the order written.
type Entry struct {
	Key     string
	KeyLine int
	Value   *Value
}

// Get returns the value of key in a mapping, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Map {
		return nil
	}
	for _, e := range v.Map {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

// entry returns the entry of key in a mapping, or nil.
func (v *Value) entry(key string) *Entry {
	if v == nil || v.Kind != Map {
		return nil
	}
	for _, e := range v.Map {
		if e.Key == key {
			return e
		}
	}
	return nil
}

// Describe renders the value briefly for messages and plans.
func (v *Value) Describe() string {
	switch v.Kind {
	case Null:
		return "null"
	case Bool:
		if v.Bool {
			return "true"
		}
		return "false"
	case Int:
		return strconv.FormatInt(v.Int, 10)
	case Float, Date:
		return v.Str
	case String:
		return strconv.Quote(v.Str)
	case List:
		parts := make([]string, len(v.List))
		for i, item := range v.List {
			parts[i] = item.Describe()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case Map:
		parts := make([]string, len(v.Map))
		for i, e := range v.Map {
			parts[i] = e.Key + ": " + e.Value.Describe()
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("<%v>", v.Kind)
}
