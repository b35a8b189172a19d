// Package tmpl renders the template in a spec value, the way vmdb2 renders
// each string with Jinja2, using pongo2 (Django syntax) inside limits: a
// spec is untrusted input and pongo2 has none of its own.
//
// What a template may use is decided by two tables. tags.go lists pongo2's
// tags: `if`, `for` and `set` are this package's own implementations (they
// are where a template loops or keeps a value, so where its budget is
// charged) and give pongo2's output; every other tag is refused before
// anything runs, with the reason ({% raw %}, which pongo2 calls verbatim, is
// its lexer's, and {# #} comments work). filters.go lists
// pongo2's filters: most are pongo2's, `center`, `ljust`, `rjust`, `join`
// and `wordwrap` are replaced by versions that cap their output (and, for
// wordwrap, do not panic), and those that multiply their input, read the
// clock or chance, or format without bounds are refused.
//
// A Renderer holds the budget of one spec (Limits; Default is far above
// what real specs use): the size of each value's template and output, the
// tokens in one {{ }} or {% %}, the nesting of `if` and `for`, the size of a
// `set` value and of a padded or joined string, and, for all values of the
// spec together, loop iterations, output and time. Size, tokens and nesting
// are checked before parsing; the rest while rendering. A render that
// panics inside pongo2 (a division by zero, for one) is an Error like the
// others. Every Error carries the line in the template where it is known.
package tmpl
