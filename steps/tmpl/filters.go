package tmpl

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/flosch/pongo2/v6"
)

// filterRule says what spec templates may do with one of pongo2's filters:
// use this package's version (own), pongo2's (both empty), or nothing, and
// why.
type filterRule struct {
	own     pongo2.FilterFunction
	refused string
}

const (
	multiplies = "it is an HTML or URL filter, of no use in a spec, whose output (or cost) can be many times its input"
	unbounded  = "it is a Django formatting filter whose width or precision has no bound"
)

// filterRules are all of pongo2 v6.0.0's filters. The ones kept as pongo2
// has them give at most a few times their input (upper and lower at most
// four times, as they map each rune to one rune), so a chain of them stays
// bounded; the own ones cap what they produce.
var filterRules = map[string]filterRule{
	"add": {}, "capfirst": {}, "cut": {}, "date": {}, "default": {}, "default_if_none": {},
	"divisibleby": {}, "first": {}, "float": {}, "get_digit": {}, "integer": {}, "last": {},
	"length": {}, "length_is": {}, "lower": {}, "make_list": {}, "phone2numeric": {},
	"pluralize": {}, "safe": {}, "slice": {}, "split": {}, "striptags": {}, "time": {},
	"title": {}, "truncatechars": {}, "truncatewords": {}, "upper": {}, "wordcount": {}, "yesno": {},

	"center":   {own: center},
	"ljust":    {own: ljust},
	"rjust":    {own: rjust},
	"join":     {own: join},
	"wordwrap": {own: wordwrap},

	"random":             {refused: "its choice would make builds differ"},
	"floatformat":        {refused: unbounded},
	"stringformat":       {refused: unbounded},
	"escape":             {refused: multiplies},
	"e":                  {refused: multiplies},
	"escapejs":           {refused: multiplies},
	"addslashes":         {refused: multiplies},
	"iriencode":          {refused: multiplies},
	"urlencode":          {refused: multiplies},
	"urlize":             {refused: multiplies},
	"urlizetrunc":        {refused: multiplies},
	"linebreaks":         {refused: multiplies},
	"linebreaksbr":       {refused: multiplies},
	"linenumbers":        {refused: multiplies},
	"removetags":         {refused: multiplies},
	"truncatechars_html": {refused: multiplies},
	"truncatewords_html": {refused: multiplies},
}

// outputLimit is the cap of a padded or joined string: the output limit of
// the running render.
func outputLimit() int {
	if active != nil {
		return active.limits.Output
	}
	return Default.Output
}

func filterError(name, format string, args ...any) *pongo2.Error {
	return &pongo2.Error{Sender: "filter:" + name, OrigError: &Error{Msg: name + ": " + fmt.Sprintf(format, args...)}}
}

func checkWidth(name string, width int) *pongo2.Error {
	if max := outputLimit(); width > max {
		return filterError(name, "width %d exceeds %s", width, size(max))
	}
	return nil
}

// center pads to width runes, one more space on the left than on the right
// when the padding is odd (pongo2's rule, with its length of a non-string
// as 0).
func center(in, param *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	width := param.Integer()
	pad := width - in.Len()
	if pad <= 0 {
		return in, nil
	}
	if err := checkWidth("center", width); err != nil {
		return nil, err
	}
	return pongo2.AsValue(strings.Repeat(" ", pad-pad/2) + in.String() + strings.Repeat(" ", pad/2)), nil
}

func ljust(in, param *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	width := param.Integer()
	pad := width - in.Len()
	if pad <= 0 {
		return pongo2.AsValue(in.String()), nil
	}
	if err := checkWidth("ljust", width); err != nil {
		return nil, err
	}
	return pongo2.AsValue(in.String() + strings.Repeat(" ", pad)), nil
}

// rjust pads on the left to width runes of the value's text (pongo2 used
// fmt's %*s: a negative width pads on the right).
func rjust(in, param *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	width := param.Integer()
	s := in.String()
	left := width >= 0
	if !left {
		width = -width
	}
	pad := width - utf8.RuneCountInString(s)
	if pad <= 0 {
		return pongo2.AsValue(s), nil
	}
	if err := checkWidth("rjust", width); err != nil {
		return nil, err
	}
	if left {
		return pongo2.AsValue(strings.Repeat(" ", pad) + s), nil
	}
	return pongo2.AsValue(s + strings.Repeat(" ", pad)), nil
}

// join joins the items of a list, or the runes of a string, with the
// parameter between them; what is not a list or string is left alone.
func join(in, param *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	if !in.CanSlice() {
		return in, nil
	}
	var items []string
	if in.IsString() {
		for _, r := range in.String() {
			items = append(items, string(r))
		}
	} else {
		for i := 0; i < in.Len(); i++ {
			items = append(items, in.Index(i).String())
		}
	}
	sep := param.String()
	n, max := 0, outputLimit()
	for i, item := range items {
		if n += len(item); i > 0 {
			n += len(sep)
		}
		if n > max {
			return nil, filterError("join", "the result would exceed %s", size(max))
		}
	}
	return pongo2.AsValue(strings.Join(items, sep)), nil
}

// wordwrap puts every `param` words on a line of their own (pongo2's
// version panicked when the last line was two or more words short).
func wordwrap(in, param *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	per := param.Integer()
	if per <= 0 {
		return in, nil
	}
	words := strings.Fields(in.String())
	var lines []string
	for len(words) > 0 {
		k := min(per, len(words))
		lines = append(lines, strings.Join(words[:k], " "))
		words = words[k:]
	}
	return pongo2.AsValue(strings.Join(lines, "\n")), nil
}
