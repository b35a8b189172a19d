package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// node is a section or a setting of lvm's configuration text: a section
// has Children, a setting Values (strings and int64s; an array has
// several).
type node struct {
	Name     string
	Children []*node
	Values   []any
	Section  bool
}

func (n *node) child(name string) *node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (n *node) str(name string) (string, error) {
	c := n.child(name)
	if c == nil || c.Section || len(c.Values) != 1 {
		return "", fmt.Errorf("%s: %s is missing or not a single value", n.Name, name)
	}
	s, ok := c.Values[0].(string)
	if !ok {
		return "", fmt.Errorf("%s: %s is not a string", n.Name, name)
	}
	return s, nil
}

func (n *node) num(name string) (int64, error) {
	c := n.child(name)
	if c == nil || c.Section || len(c.Values) != 1 {
		return 0, fmt.Errorf("%s: %s is missing or not a single value", n.Name, name)
	}
	v, ok := c.Values[0].(int64)
	if !ok || v < 0 {
		return 0, fmt.Errorf("%s: %s is not a number", n.Name, name)
	}
	return v, nil
}

// Limits of what the parser accepts from an untrusted image.
const (
	maxDepth = 32
	maxNodes = 1 << 16
)

type parser struct {
	s     string
	pos   int
	nodes int
}

// parseConfig parses lvm's configuration text (comments, any whitespace,
// nested sections, arrays).
func parseConfig(text string) (*node, error) {
	p := &parser{s: text}
	root := &node{Name: "(top)", Section: true}
	if err := p.body(root, 0); err != nil {
		return nil, err
	}
	if p.pos < len(p.s) {
		return nil, p.errf("unexpected %q", p.s[p.pos])
	}
	return root, nil
}

func (p *parser) errf(format string, args ...any) error {
	line := 1 + strings.Count(p.s[:p.pos], "\n")
	return fmt.Errorf("metadata line %d: %s", line, fmt.Sprintf(format, args...))
}

// skip passes whitespace and comments.
func (p *parser) skip() {
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; {
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) body(sec *node, depth int) error {
	if depth > maxDepth {
		return p.errf("sections nested too deeply")
	}
	for {
		p.skip()
		if p.pos >= len(p.s) || p.s[p.pos] == '}' {
			return nil
		}
		if p.nodes++; p.nodes > maxNodes {
			return p.errf("too many settings")
		}
		name := p.ident()
		if name == "" {
			return p.errf("expected a name, found %q", p.s[p.pos])
		}
		p.skip()
		n := &node{Name: name}
		sec.Children = append(sec.Children, n)
		if err := p.item(n, depth); err != nil {
			return err
		}
	}
}

// item reads what follows a name: a section or "= value".
func (p *parser) item(n *node, depth int) error {
	switch {
	case p.pos < len(p.s) && p.s[p.pos] == '{':
		p.pos++
		n.Section = true
		if err := p.body(n, depth+1); err != nil {
			return err
		}
		if p.pos >= len(p.s) {
			return p.errf("section %s is not closed", n.Name)
		}
		p.pos++
		return nil
	case p.pos < len(p.s) && p.s[p.pos] == '=':
		p.pos++
		p.skip()
		return p.values(n)
	}
	return p.errf("expected { or = after %s", n.Name)
}

func (p *parser) ident() string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+.-/", c) >= 0) {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *parser) values(n *node) error {
	if p.pos < len(p.s) && p.s[p.pos] == '[' {
		p.pos++
		for {
			p.skip()
			if p.pos < len(p.s) && p.s[p.pos] == ']' {
				p.pos++
				return nil
			}
			if len(n.Values) > 0 {
				if p.pos >= len(p.s) || p.s[p.pos] != ',' {
					return p.errf("expected , or ] in %s", n.Name)
				}
				p.pos++
				p.skip()
			}
			if err := p.value(n); err != nil {
				return err
			}
			if p.nodes++; p.nodes > maxNodes {
				return p.errf("too many values")
			}
		}
	}
	return p.value(n)
}

func (p *parser) value(n *node) error {
	if p.pos >= len(p.s) {
		return p.errf("%s has no value", n.Name)
	}
	if p.s[p.pos] == '"' {
		return p.quoted(n)
	}
	start := p.pos
	for p.pos < len(p.s) && (p.s[p.pos] == '-' || p.s[p.pos] == '.' || p.s[p.pos] >= '0' && p.s[p.pos] <= '9') {
		p.pos++
	}
	word := p.s[start:p.pos]
	if v, err := strconv.ParseInt(word, 10, 64); err == nil {
		n.Values = append(n.Values, v)
		return nil
	}
	if _, err := strconv.ParseFloat(word, 64); err == nil && word != "" {
		n.Values = append(n.Values, word) // lvm floats: kept as text
		return nil
	}
	return p.errf("bad value for %s", n.Name)
}

// quoted reads a string with lvm's backslash escapes.
func (p *parser) quoted(n *node) error {
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch c {
		case '"':
			n.Values = append(n.Values, b.String())
			return nil
		case '\\':
			if p.pos < len(p.s) {
				b.WriteByte(p.s[p.pos])
				p.pos++
			}
		default:
			b.WriteByte(c)
		}
	}
	return p.errf("string in %s is not closed", n.Name)
}
