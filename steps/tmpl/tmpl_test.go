package tmpl

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"
)

func render(t *testing.T, l Limits, src string) (string, *Error) {
	t.Helper()
	out, err := New(l).Render(src, pongo2.Context{"output": "out.img", "list": []string{"b", "a"}})
	if err == nil {
		return out, nil
	}
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("%q: error %T is not a *tmpl.Error: %v", src, err, err)
	}
	return out, te
}

func TestOwnFilters(t *testing.T) {
	cases := map[string]string{
		"[{{ 'ab'|center:5 }}]":                            "[  ab ]",
		"[{{ 5|center:3 }}]":                               "[  5 ]", // pongo2 counts a number as length 0
		"[{{ 'é'|ljust:3 }}]":                              "[é  ]",
		"[{{ 'é'|rjust:3 }}]":                              "[  é]",
		"{% set w = 0 - 4 %}[{{ 'ab'|rjust:w }}]":          "[ab  ]",
		"{{ list|join:', ' }}|{{ 'héj'|join:'.' }}":        "b, a|h.é.j",
		"{{ 5|join:'-' }}":                                 "5",
		"{{ 'a b c d e'|wordwrap:3 }}|{{ ''|wordwrap:2 }}": "a b c\nd e|",
		"{{ 'a b c'|wordwrap:0 }}":                         "a b c",
	}
	for src, want := range cases {
		if got, err := render(t, Default, src); err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", src, got, err, want)
		}
	}
}

func TestErrorsHaveTheirLine(t *testing.T) {
	l := Default
	l.Iterations = 10
	cases := []struct {
		src  string
		line int
		msg  string
	}{
		{"a\nb\n{% for c in 'abcdefghijklmnop' %}{{ c }}{% endfor %}", 3, "loops ran more than 10 times"},
		{"a\n{% for c in 'ab' %}\n{{ 1 % 0 }}{% endfor %}", 2, "division or modulo by zero"},
		{"a\n\n{{ 'x'|ljust:2000000 }}", 3, "ljust: width 2000000 exceeds 1 MiB"},
		{"a\n{% set s = 'x'|ljust:1048576 %}\n{% set s = s + 'y' %}", 3, "`set s` would hold 1048577 bytes"},
		{"a\n{% if 1 %}\n{% with %}{% endwith %}{% endif %}", 3, "the `with` tag is not available"},
		{"a\n{{ 1 }}\n{{ x|urlize }}", 3, "the `urlize` filter is not available"},
	}
	for _, c := range cases {
		_, err := render(t, l, c.src)
		if err == nil || err.Line != c.line || !strings.Contains(err.Msg, c.msg) {
			t.Errorf("%q: got %v, want line %d: %s", c.src, err, c.line, c.msg)
		}
	}
}

func TestTimeLimit(t *testing.T) {
	l := Default
	l.Time = -time.Second // already over when rendering starts
	_, err := render(t, l, "{% for c in 'abc' %}{{ c }}{% endfor %}")
	if err == nil || !strings.Contains(err.Msg, "templates took more than -1s to render") {
		t.Fatalf("got %v", err)
	}
}

func TestSpentBudgetStopsRendering(t *testing.T) {
	l := Default
	l.Iterations = 5
	r := New(l)
	if _, err := r.Render("{% for c in 'abcdef' %}{% endfor %}", nil); err == nil || !r.Spent() {
		t.Fatalf("want the iteration limit: %v", err)
	}
	if _, err := r.Render("{{ 1 }}", nil); err == nil {
		t.Fatal("a spent budget rendered another value")
	}
	if out, err := r.Render("no template", nil); err != nil || out != "no template" {
		t.Fatalf("a value without template syntax is itself: %q %v", out, err)
	}
}

func TestOutputLimitPerValue(t *testing.T) {
	l := Default
	l.Output = 10
	r := New(l)
	if _, err := r.Render("{{ 'abcdefghijk' }}", nil); err == nil || !strings.Contains(err.Error(), "exceeds 10 bytes") {
		t.Fatalf("got %v", err)
	}
	if r.Spent() {
		t.Fatal("the output limit of one value spent the spec's budget")
	}
	if out, err := r.Render("{{ 'abcdefghij' }}", nil); err != nil || out != "abcdefghij" {
		t.Fatalf("got %q %v", out, err)
	}
}

// TestScanAfterUnknownCharacter: where pongo2's lexer meets a character
// that is no token it goes back to text; the scan goes on there too, so
// what follows is still checked.
func TestScanAfterUnknownCharacter(t *testing.T) {
	src := "{{ a @ }}" + strings.Repeat("{% if 1 %}", 200) + strings.Repeat("{% endif %}", 200)
	if _, err := render(t, Default, src); err == nil || !strings.Contains(err.Msg, "nested more than 100 deep") {
		t.Fatalf("got %v", err)
	}
	src = "{% verbatim %}" + strings.Repeat("{% if 1 %}", 200) + "{% endverbatim %}{# {% if %} #}"
	if out, err := render(t, Default, src); err != nil || !strings.HasPrefix(out, "{% if 1 %}") {
		t.Fatalf("verbatim text is not counted: %q %v", out, err)
	}
}

// TestTablesArePongo2s checks the tag and filter tables against pongo2's
// source: every tag and filter it registers is in them, and nothing else.
func TestTablesArePongo2s(t *testing.T) {
	fn := runtime.FuncForPC(reflect.ValueOf(pongo2.NewSet).Pointer())
	file, _ := fn.FileLine(fn.Entry())
	sources, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*.go"))
	if len(sources) == 0 {
		t.Skip("pongo2's source is not at", file)
	}
	registered := map[string][]string{}
	re := regexp.MustCompile(`Register(Tag|Filter)\("([a-z0-9_]+)"`)
	for _, path := range sources {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			registered[m[1]] = append(registered[m[1]], m[2])
		}
	}
	for kind, table := range map[string][]string{"Tag": keys(tagRules), "Filter": keys(filterRules)} {
		got := registered[kind]
		sort.Strings(got)
		if !reflect.DeepEqual(got, table) {
			t.Errorf("pongo2 registers the %ss %v;\nthe table has %v", kind, got, table)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
