package steps

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/flosch/pongo2/v6"
)

// None stands for Python's None: vmdb2 defines `output`, `image` and
// `rootfs_tarball` even when their options are not given, and Jinja renders
// them as the text "None". It is false in `{% if %}` like Python's None.
type None int

func (None) String() string { return "None" }

var (
	templateSetOnce sync.Once
	templateSet     *pongo2.TemplateSet
)

// templates returns the template set used for spec values. Tags that would
// read host files or the clock (include, ssi, import, extends, now) are
// banned: vmdb2's Jinja has no loader, and builds must not depend on the time.
func templates() *pongo2.TemplateSet {
	templateSetOnce.Do(func() {
		// pongo2 escapes HTML by default, which would corrupt shell commands.
		pongo2.SetAutoescape(false)
		templateSet = pongo2.NewSet("vmdb2-spec", pongo2.DefaultLoader)
		for _, tag := range []string{"include", "ssi", "import", "extends", "now"} {
			_ = templateSet.BanTag(tag)
		}
	})
	return templateSet
}

var (
	rawOpenRE  = regexp.MustCompile(`\{%-?\s*raw\s*-?%\}`)
	rawCloseRE = regexp.MustCompile(`\{%-?\s*endraw\s*-?%\}`)
)

// renderTemplate renders one string value the way vmdb2 does with Jinja2:
// CRLF becomes LF, one trailing newline is dropped (Jinja's default
// keep_trailing_newline=False), undefined names render as "". Jinja's
// {% raw %} is accepted as pongo2's {% verbatim %}.
func renderTemplate(src string, vars pongo2.Context) (string, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.TrimSuffix(src, "\n")
	if !strings.Contains(src, "{{") && !strings.Contains(src, "{%") && !strings.Contains(src, "{#") {
		return src, nil
	}
	src = rawOpenRE.ReplaceAllString(src, "{% verbatim %}")
	src = rawCloseRE.ReplaceAllString(src, "{% endverbatim %}")
	tpl, err := templates().FromString(src)
	if err != nil {
		return "", err
	}
	out, err := tpl.Execute(vars)
	if err != nil {
		return "", err
	}
	return out, nil
}

// templateErrorLine extracts the template-relative line and a short message
// from a pongo2 error.
func templateErrorLine(err error) (int, string) {
	var pe *pongo2.Error
	if errors.As(err, &pe) {
		msg := "template error"
		if pe.OrigError != nil {
			msg = pe.OrigError.Error()
		}
		if pe.Token != nil {
			msg = fmt.Sprintf("%s (near %q)", msg, pe.Token.Val)
		}
		return pe.Line, msg
	}
	return 0, err.Error()
}

// renderValue renders every string inside v (not mapping keys), in place.
func renderValue(v *Value, vars pongo2.Context, file string, ds *Diagnostics) {
	switch v.Kind {
	case String:
		v.DroppedNewline = strings.HasSuffix(strings.ReplaceAll(v.Str, "\r\n", "\n"), "\n")
		out, err := renderTemplate(v.Str, vars)
		if err != nil {
			rel, msg := templateErrorLine(err)
			line := v.Line
			if rel > 0 {
				line += rel - 1
				if v.Block {
					line++
				}
			}
			*ds = append(*ds, Diagnostic{File: file, Line: line, Msg: "template error: " + msg + templateHint(v.Str)})
			return
		}
		v.Str = out
	case List:
		for _, item := range v.List {
			renderValue(item, vars, file, ds)
		}
	case Map:
		for _, e := range v.Map {
			renderValue(e.Value, vars, file, ds)
		}
	}
}

// templateHint explains the usual cause of template errors in shell text.
func templateHint(src string) string {
	if strings.Contains(src, "{#") {
		return "; `{#` starts a template comment (as in vmdb2's Jinja2): in shell code write `{{ '{#' }}` or wrap it in {% raw %}…{% endraw %}"
	}
	return ""
}
