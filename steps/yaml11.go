package steps

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// vmdb2 reads specs with PyYAML's safe_load, which follows YAML 1.1, while
// yaml.v3 resolves plain scalars by YAML 1.2 rules. The differences matter
// for real specs (`perm: 0644` is octal, `recommends: no` is false), so plain
// scalars are resolved here with PyYAML's own resolver patterns instead of
// yaml.v3's.
var (
	yaml11Bool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yaml11Null  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	yaml11Int   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yaml11Float = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	yaml11Date  = regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)
)

// resolvePlain types a plain (unquoted, untagged) scalar like YAML 1.1.
func resolvePlain(text string) (ValueKind, error) {
	switch {
	case yaml11Null.MatchString(text):
		return Null, nil
	case yaml11Bool.MatchString(text):
		return Bool, nil
	case yaml11Int.MatchString(text):
		return Int, nil
	case yaml11Float.MatchString(text):
		return Float, nil
	case yaml11Date.MatchString(text):
		return Date, nil
	}
	return String, nil
}

// parseInt11 converts text matching yaml11Int to its value the way PyYAML
// constructs it: underscores ignored, 0b binary, 0x hex, leading 0 octal,
// a:b:c sexagesimal.
func parseInt11(text string) (int64, error) {
	s := strings.ReplaceAll(text, "_", "")
	sign := int64(1)
	if strings.HasPrefix(s, "-") {
		sign = -1
		s = s[1:]
	} else if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	var n uint64
	var err error
	switch {
	case s == "0":
		return 0, nil
	case strings.HasPrefix(s, "0b"):
		n, err = strconv.ParseUint(s[2:], 2, 63)
	case strings.HasPrefix(s, "0x"):
		n, err = strconv.ParseUint(s[2:], 16, 63)
	case strings.HasPrefix(s, "0"):
		n, err = strconv.ParseUint(s[1:], 8, 63)
	case strings.Contains(s, ":"):
		for _, part := range strings.Split(s, ":") {
			d, perr := strconv.ParseUint(part, 10, 63)
			if perr != nil {
				return 0, fmt.Errorf("invalid integer %q", text)
			}
			if n > (math.MaxInt64-d)/60 {
				return 0, fmt.Errorf("integer %q is too large", text)
			}
			n = n*60 + d
		}
	default:
		n, err = strconv.ParseUint(s, 10, 63)
	}
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("integer %q is too large", text)
		}
		return 0, fmt.Errorf("invalid integer %q", text)
	}
	return sign * int64(n), nil
}

// convertNode turns a yaml.v3 node into a Value with YAML 1.1 typing.
// Aliases are expanded; merge keys (<<) are applied as PyYAML does.
// depth guards against alias bombs and absurd nesting.
func convertNode(n *yaml.Node, depth int, budget *int) (*Value, error) {
	if depth > 200 {
		return nil, fmt.Errorf("line %d: spec is nested too deeply", n.Line)
	}
	*budget--
	if *budget < 0 {
		return nil, fmt.Errorf("line %d: spec expands to too many values (alias loop or bomb?)", n.Line)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &Value{Kind: Null, Line: n.Line}, nil
		}
		return convertNode(n.Content[0], depth+1, budget)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: unknown alias", n.Line)
		}
		v, err := convertNode(n.Alias, depth+1, budget)
		if err != nil {
			return nil, err
		}
		// Report the alias's own line: that is where the user used it.
		cp := *v
		cp.Line = n.Line
		return &cp, nil
	case yaml.ScalarNode:
		return convertScalar(n)
	case yaml.SequenceNode:
		v := &Value{Kind: List, Line: n.Line}
		for _, c := range n.Content {
			item, err := convertNode(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			v.List = append(v.List, item)
		}
		return v, nil
	case yaml.MappingNode:
		return convertMapping(n, depth, budget)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func convertMapping(n *yaml.Node, depth int, budget *int) (*Value, error) {
	v := &Value{Kind: Map, Line: n.Line}
	var merged []*Entry
	set := func(list *[]*Entry, e *Entry) {
		for i, old := range *list {
			if old.Key == e.Key {
				// PyYAML: the last duplicate wins.
				(*list)[i] = e
				return
			}
		}
		*list = append(*list, e)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 {
			src, err := convertNode(val, depth+1, budget)
			if err != nil {
				return nil, err
			}
			var sources []*Value
			switch src.Kind {
			case Map:
				sources = []*Value{src}
			case List:
				sources = src.List
			}
			for _, s := range sources {
				if s.Kind != Map {
					return nil, fmt.Errorf("line %d: merge key << needs a mapping or a list of mappings", val.Line)
				}
				for _, e := range s.Map {
					set(&merged, e)
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: mapping keys must be plain names, not a %s", k.Line, nodeKindName(k.Kind))
		}
		item, err := convertNode(val, depth+1, budget)
		if err != nil {
			return nil, err
		}
		set(&v.Map, &Entry{Key: k.Value, KeyLine: k.Line, Value: item})
	}
	// Explicit keys take precedence over merged ones.
	for _, e := range merged {
		if v.entry(e.Key) == nil {
			v.Map = append(v.Map, e)
		}
	}
	return v, nil
}

func nodeKindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

func convertScalar(n *yaml.Node) (*Value, error) {
	v := &Value{Line: n.Line, Str: n.Value}
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	v.Block = n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	kind := String
	if n.Style&yaml.TaggedStyle != 0 {
		switch n.Tag {
		case "!!str", "tag:yaml.org,2002:str":
			kind = String
		case "!!int", "tag:yaml.org,2002:int":
			kind = Int
		case "!!bool", "tag:yaml.org,2002:bool":
			kind = Bool
		case "!!float", "tag:yaml.org,2002:float":
			kind = Float
		case "!!null", "tag:yaml.org,2002:null":
			kind = Null
		case "!!timestamp", "tag:yaml.org,2002:timestamp":
			kind = Date
		default:
			return nil, fmt.Errorf("line %d: unsupported YAML tag %s", n.Line, n.Tag)
		}
	} else if !quoted {
		var err error
		if kind, err = resolvePlain(n.Value); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	v.Kind = kind
	switch kind {
	case Bool:
		switch strings.ToLower(n.Value) {
		case "yes", "true", "on":
			v.Bool = true
		case "no", "false", "off":
			v.Bool = false
		default:
			return nil, fmt.Errorf("line %d: %q is not a boolean", n.Line, n.Value)
		}
	case Int:
		i, err := parseInt11(n.Value)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		v.Int = i
	}
	return v, nil
}
