package tmpl

import (
	"fmt"
	"strings"
)

// scan checks, before pongo2 parses src, what its parser and evaluator
// cannot bound: the tokens in each {{ }} and {% %} (an expression's cost and
// the size of its result grow with them) and the nesting of `if` and `for`
// (pongo2 parses and runs them by recursion, and the Go stack overflowing
// would kill the process). It reads src as pongo2's lexer does; what that
// lexer would refuse is left for pongo2 to report.
func (r *Renderer) scan(src string) *Error {
	line, depth := 1, 0
	for i := 0; i < len(src); {
		rest := src[i:]
		switch {
		case strings.HasPrefix(rest, "{% verbatim %}"):
			end := strings.Index(rest, "{% endverbatim %}")
			if end < 0 {
				return nil
			}
			line += strings.Count(rest[:end], "\n")
			i += end + len("{% endverbatim %}")
			continue
		case strings.HasPrefix(rest, "{#"):
			end := strings.Index(rest, "#}")
			if end < 0 || strings.Contains(rest[:end], "\n") {
				return nil
			}
			i += end + 2
			continue
		case strings.HasPrefix(rest, "{{") || strings.HasPrefix(rest, "{%"):
			words, n, end := lexBlock(rest)
			if len(words) > r.limits.Tokens {
				return &Error{Line: line, Msg: fmt.Sprintf("more than %d tokens in one {{ }} or {%% %%}: split it with `set`", r.limits.Tokens)}
			}
			if rest[1] == '%' && len(words) > 0 {
				switch words[0] {
				case "if", "for":
					if depth++; depth > r.limits.Depth {
						return &Error{Line: line, Msg: fmt.Sprintf("`if` and `for` nested more than %d deep", r.limits.Depth)}
					}
				case "endif", "endfor":
					depth = max(depth-1, 0)
				}
			}
			if end == lexError {
				return nil
			}
			// Closed, or (at an unknown character) back to text as
			// pongo2's lexer goes.
			i += n
			continue
		}
		if src[i] == '\n' {
			line++
		}
		i++
	}
	return nil
}

// Symbols of pongo2's lexer, longest first.
var symbols = []string{
	"{{-", "-}}", "{%-", "-%}",
	"==", ">=", "<=", "&&", "||", "{{", "}}", "{%", "%}", "!=", "<>",
	"(", ")", "+", "-", "*", "<", ">", "/", "^", ",", ".", "!", "|", ":", "=", "%", "[", "]",
}

// How a block ends.
const (
	closed   = iota // at }} or %}
	unknown         // at a character that is no token: the lexer goes back to text there
	lexError        // where pongo2's lexer fails (a newline, a bad string, the end)
)

// lexBlock reads the {{ }} or {% %} at the start of s: its tokens (words
// and symbols; strings as ""), how many bytes it spans, and how it ends.
func lexBlock(s string) (words []string, n int, end int) {
	i := 2
	if len(s) > 2 && s[2] == '-' {
		i = 3
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case isWord(c):
			j := i + 1
			for j < len(s) && isWord(s[j]) {
				j++
			}
			words = append(words, s[i:j])
			i = j
		case c == '"' || c == '\'':
			j, ok := stringEnd(s, i)
			if !ok {
				return words, 0, lexError
			}
			words = append(words, "")
			i = j
		default:
			sym := ""
			for _, candidate := range symbols {
				if strings.HasPrefix(s[i:], candidate) {
					sym = candidate
					break
				}
			}
			if sym == "" && c == '\n' {
				return words, 0, lexError
			}
			if sym == "" {
				return words, i, unknown
			}
			i += len(sym)
			if strings.HasSuffix(sym, "}}") || strings.HasSuffix(sym, "%}") {
				return words, i, closed
			}
			words = append(words, sym)
		}
	}
	return words, 0, lexError
}

func isWord(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// stringEnd returns the index after the string literal starting at s[i],
// with pongo2's escapes \" and \\, or false where pongo2's lexer stops.
func stringEnd(s string, i int) (int, bool) {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case quote:
			return j + 1, true
		case '\n':
			return 0, false
		case '\\':
			if j+1 >= len(s) || (s[j+1] != '"' && s[j+1] != '\\') {
				return 0, false
			}
			j++
		}
	}
	return 0, false
}
