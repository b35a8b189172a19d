package tmpl

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/flosch/pongo2/v6"
)

// Limits bound what the templates of one spec may cost.
type Limits struct {
	Source int // bytes in the template of one value
	Output int // bytes one value renders to; also the most a `set` value, a padding width or a join may reach
	Tokens int // tokens inside one {{ }} or {% %}
	Depth  int // nesting of `if` and `for`

	// For all values of a spec together:
	Iterations int           // loop iterations
	Total      int           // bytes rendered
	Time       time.Duration // time spent rendering
}

// Default is far above what real specs reach: their values are a few KiB,
// and their templates are variables and an `if` or `for` or two.
var Default = Limits{
	Source: 1 << 20, Output: 1 << 20, Tokens: 64, Depth: 100,
	Iterations: 1000000, Total: 16 << 20, Time: 10 * time.Second,
}

// Error is a template that failed: to parse, to stay within its limits, or
// inside pongo2. Line is 1-based within the template, 0 when unknown.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Renderer renders the values of one spec, charging one budget.
type Renderer struct {
	limits     Limits
	deadline   time.Time
	iterations int
	total      int
	spent      *Error // set once a limit of the whole spec is reached
	line       int    // line of the innermost if/for/set being run
}

// New starts the budget of a spec (its clock starts now).
func New(l Limits) *Renderer {
	return &Renderer{limits: l, deadline: time.Now().Add(l.Time)}
}

// Spent reports whether a limit of the whole spec was reached: rendering
// more of its values would only fail again.
func (r *Renderer) Spent() bool { return r.spent != nil }

var (
	rawOpenRE  = regexp.MustCompile(`\{%-?\s*raw\s*-?%\}`)
	rawCloseRE = regexp.MustCompile(`\{%-?\s*endraw\s*-?%\}`)
)

// HasTemplate reports whether src holds any template syntax; without it, a
// value is its own rendering.
func HasTemplate(src string) bool {
	return strings.Contains(src, "{{") || strings.Contains(src, "{%") || strings.Contains(src, "{#")
}

// Render renders src with vars. Undefined names render as "", and Jinja's
// {% raw %} is accepted as pongo2's {% verbatim %}.
func (r *Renderer) Render(src string, vars pongo2.Context) (string, error) {
	if !HasTemplate(src) {
		return src, nil
	}
	if r.spent != nil {
		return "", &Error{Msg: r.spent.Msg}
	}
	if len(src) > r.limits.Source {
		return "", &Error{Msg: fmt.Sprintf("the template is %d bytes, over the limit of %s for one value", len(src), size(r.limits.Source))}
	}
	src = rawOpenRE.ReplaceAllString(src, "{% verbatim %}")
	src = rawCloseRE.ReplaceAllString(src, "{% endverbatim %}")
	if err := r.scan(src); err != nil {
		return "", err
	}
	return r.execute(src, vars)
}

// renderMu makes renders one at a time, and active is the one running:
// pongo2 passes no data of ours to tag parsers and filters, so the tags and
// filters of this package find their budget here.
var (
	renderMu sync.Mutex
	active   *Renderer
)

func (r *Renderer) execute(src string, vars pongo2.Context) (out string, err error) {
	renderMu.Lock()
	active = r
	defer func() {
		active = nil
		renderMu.Unlock()
	}()
	r.line = 0
	defer func() {
		if p := recover(); p != nil {
			out, err = "", r.fromPanic(p)
		}
	}()
	tpl, perr := templates().FromString(src)
	if perr != nil {
		return "", fromPongo(perr)
	}
	w := &limitWriter{r: r}
	if perr := tpl.ExecuteWriterUnbuffered(vars, w); perr != nil {
		return "", fromPongo(perr)
	}
	return w.b.String(), nil
}

// limitPanic carries an Error out of pongo2 from a place that cannot
// return one (its nodes ignore what their writer returns).
type limitPanic struct{ err *Error }

func (r *Renderer) fromPanic(p any) *Error {
	if lp, ok := p.(limitPanic); ok {
		return lp.err
	}
	if re, ok := p.(runtime.Error); ok && strings.Contains(re.Error(), "divide by zero") {
		return &Error{Line: r.line, Msg: "division or modulo by zero"}
	}
	return &Error{Line: r.line, Msg: fmt.Sprintf("the template engine failed: %v", p)}
}

// fromPongo turns a pongo2 error into an Error with its line and a short
// message.
func fromPongo(err error) *Error {
	var pe *pongo2.Error
	if !errors.As(err, &pe) {
		return &Error{Msg: err.Error()}
	}
	var le *Error
	if errors.As(pe.OrigError, &le) {
		if le.Line == 0 {
			le.Line = pe.Line
		}
		return le
	}
	msg := "template error"
	if pe.OrigError != nil {
		if refusal, ok := refusalMessage(pe.OrigError.Error()); ok {
			return &Error{Line: pe.Line, Msg: refusal}
		}
		msg = pe.OrigError.Error()
	}
	if pe.Token != nil {
		msg = fmt.Sprintf("%s (near %q)", msg, pe.Token.Val)
	}
	return &Error{Line: pe.Line, Msg: msg}
}

// limitWriter collects the output of one value within its limit and the
// spec's, checking the spec's clock at every write.
type limitWriter struct {
	r *Renderer
	b strings.Builder
}

func (w *limitWriter) Write(p []byte) (int, error) {
	r := w.r
	if w.b.Len()+len(p) > r.limits.Output {
		panic(limitPanic{&Error{Line: r.line, Msg: fmt.Sprintf("the output of this value exceeds %s", size(r.limits.Output))}})
	}
	r.total += len(p)
	if r.total > r.limits.Total {
		panic(limitPanic{r.spend(r.line, fmt.Sprintf("this spec's templates render to more than %s", size(r.limits.Total)))})
	}
	if err := r.checkTime(); err != nil {
		panic(limitPanic{err})
	}
	return w.b.Write(p)
}

// spend records that a limit of the whole spec is reached.
func (r *Renderer) spend(line int, msg string) *Error {
	r.spent = &Error{Line: line, Msg: msg}
	return r.spent
}

func (r *Renderer) checkTime() *Error {
	if time.Now().After(r.deadline) {
		return r.spend(r.line, fmt.Sprintf("this spec's templates took more than %v to render", r.limits.Time))
	}
	return nil
}

// size formats a limit in bytes for messages.
func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
