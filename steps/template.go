package steps

import (
	"errors"
	"strings"

	"github.com/flosch/pongo2/v6"

	"github.com/vmdb2-go/vmdb2/steps/tmpl"
)

// None stands for Python's None: vmdb2 defines `output`, `image` and
// `rootfs_tarball` even when their options are not given, and Jinja renders
// them as the text "None". It is false in `{% if %}` like Python's None.
type None int

func (None) String() string { return "None" }

// specRender renders the values of one spec, with one template budget.
type specRender struct {
	file string
	vars pongo2.Context
	tpl  *tmpl.Renderer
}

// newSpecRender renders with the variables of ctx (Vars.context, or
// Vars.seedContext for the seed) and a budget of its own.
func newSpecRender(file string, ctx pongo2.Context) *specRender {
	return &specRender{file: file, vars: ctx, tpl: tmpl.New(tmpl.Default)}
}

// spent reports that a limit of the whole spec was reached (its error is
// reported): its other values are not rendered.
func (r *specRender) spent() bool { return r.tpl.Spent() }

// renderTemplate renders one string value the way vmdb2 does with Jinja2:
// CRLF becomes LF, one trailing newline is dropped (Jinja's default
// keep_trailing_newline=False), undefined names render as "".
func (r *specRender) renderTemplate(src string) (string, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.TrimSuffix(src, "\n")
	return r.tpl.Render(src, r.vars)
}

// value renders every string inside v (not mapping keys), in place.
func (r *specRender) value(v *Value, ds *Diagnostics) {
	switch v.Kind {
	case String:
		v.DroppedNewline = strings.HasSuffix(strings.ReplaceAll(v.Str, "\r\n", "\n"), "\n")
		out, err := r.renderTemplate(v.Str)
		if err != nil {
			*ds = append(*ds, Diagnostic{File: r.file, Line: errorLine(v, err), Msg: "template error: " + errorMsg(err) + templateHint(v.Str)})
			return
		}
		v.Str = out
	case List:
		for _, item := range v.List {
			if r.value(item, ds); r.spent() {
				return
			}
		}
	case Map:
		for _, e := range v.Map {
			if r.value(e.Value, ds); r.spent() {
				return
			}
		}
	}
}

// errorLine is the spec line of a template error in v: the template's line
// counted from the value's first line.
func errorLine(v *Value, err error) int {
	var te *tmpl.Error
	if !errors.As(err, &te) || te.Line == 0 {
		return v.Line
	}
	line := v.Line + te.Line - 1
	if v.Block {
		line++
	}
	return line
}

func errorMsg(err error) string {
	var te *tmpl.Error
	if errors.As(err, &te) {
		return te.Msg
	}
	return err.Error()
}

// templateHint explains the usual cause of template errors in shell text.
func templateHint(src string) string {
	if strings.Contains(src, "{#") {
		return "; `{#` starts a template comment (as in vmdb2's Jinja2): in shell code write `{{ '{#' }}` or wrap it in {% raw %}…{% endraw %}"
	}
	return ""
}
