package steps

import (
	"runtime"
	"strings"
	"testing"
)

// templateDiag plans spec and returns its only error, which must be a
// template error at t.vmdb:line.
func templateDiag(t *testing.T, spec string, line int) string {
	t.Helper()
	_, ds := planText(t, DefaultRegistry(), spec, Vars{Output: "out.img", Arch: "amd64"})
	errs := ds.Errors()
	if len(errs) != 1 {
		t.Fatalf("want one error, got %d: %v", len(errs), ds)
	}
	d := errs[0]
	if d.File != "t.vmdb" || d.Line != line || !strings.HasPrefix(d.Msg, "template error: ") {
		t.Fatalf("want a template error at t.vmdb:%d, got %s", line, d)
	}
	return d.String()
}

func wantIn(t *testing.T, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%q lacks %q", msg, p)
		}
	}
}

// The crash inputs of the trust issue: each was an "internal error" (a
// panic) without a line.
func TestTemplateDivisionByZero(t *testing.T) {
	msg := templateDiag(t, "steps:\n- echo: a\n- echo: \"{{ 1 % 0 }}\"\n", 3)
	wantIn(t, msg, "division or modulo by zero")
	templateDiag(t, "steps:\n- echo: \"{{ 7 / 0 }}\"\n", 2)
}

func TestTemplateCycleRefused(t *testing.T) {
	msg := templateDiag(t, "steps:\n- echo: |\n    x\n    {% cycle %}\n", 4)
	wantIn(t, msg, "`cycle`", "not available")
}

// TestTemplateFuzzCrash is the fuzzer's crash input (division by zero).
func TestTemplateFuzzCrash(t *testing.T) {
	raw, ds := Load("fuzz.vmdb", []byte("steps:\n- 0: 0{{!o%0000}}0"))
	if raw == nil {
		t.Fatal(ds)
	}
	_, pds := NewPlan(DefaultRegistry(), raw, Vars{Output: "o.img", Arch: "amd64"})
	// The template error, and (all problems at once) that no kind has
	// the key `0`.
	errs := pds.Errors()
	if len(errs) == 0 || !strings.HasPrefix(errs[0].String(), "fuzz.vmdb:2: template error: ") {
		t.Fatalf("want a template error at fuzz.vmdb:2 first: %v", pds)
	}
}

func TestTemplateSortedStringIsAnError(t *testing.T) {
	msg := templateDiag(t, "steps:\n- echo: \"{% for c in output sorted %}{{ c }}{% endfor %}\"\n", 2)
	wantIn(t, msg, "sorted")
}

// nestedLoops is a 450-byte spec whose four nested loops run 200^4 times.
func nestedLoops(body string) string {
	a := strings.Repeat("x", 200)
	return "steps:\n- echo: \"{% set a = '" + a + "' %}" +
		"{% for i in a %}{% for j in a %}{% for k in a %}{% for l in a %}" + body +
		"{% endfor %}{% endfor %}{% endfor %}{% endfor %}\"\n"
}

func TestTemplateLoopIterationsAreLimited(t *testing.T) {
	msg := templateDiag(t, nestedLoops(""), 2)
	wantIn(t, msg, "loops ran more than 1000000 times")
}

func TestTemplateOutputIsLimited(t *testing.T) {
	msg := templateDiag(t, nestedLoops("{{ i }}{{ j }}{{ k }}{{ l }} "), 2)
	wantIn(t, msg, "output", "exceeds 1 MiB")
}

func TestTemplateWidthIsLimited(t *testing.T) {
	for _, f := range []string{"center", "ljust", "rjust"} {
		msg := templateDiag(t, "steps:\n- echo: \"{{ 'x'|"+f+":300000000 }}\"\n", 2)
		wantIn(t, msg, f, "300000000", "1 MiB")
	}
}

func TestTemplateSetValueIsLimited(t *testing.T) {
	spec := "steps:\n- echo: |\n    {% set a = 'xxxxxxxx' %}\n" + strings.Repeat("    {% set a = a + a %}\n", 40)
	msg := templateDiag(t, spec, 3+18)
	wantIn(t, msg, "`set a`", "1 MiB")
}

func TestTemplateJoinIsLimited(t *testing.T) {
	spec := "steps:\n- echo: \"{% set a = 'x'|ljust:100000 %}{{ a|make_list|join:a }}\"\n"
	msg := templateDiag(t, spec, 2)
	wantIn(t, msg, "join", "1 MiB")
}

func TestTemplateNestingIsLimited(t *testing.T) {
	spec := "steps:\n- echo: \"" + strings.Repeat("{% if 1 %}", 101) + "x" + strings.Repeat("{% endif %}", 101) + "\"\n"
	msg := templateDiag(t, spec, 2)
	wantIn(t, msg, "nested more than 100 deep")
}

func TestTemplateExpressionSizeIsLimited(t *testing.T) {
	spec := "steps:\n- echo: |\n    ok\n    {{ output" + strings.Repeat(" + output", 40) + " }}\n"
	msg := templateDiag(t, spec, 4)
	wantIn(t, msg, "more than 64 tokens")
}

func TestTemplateSourceIsLimited(t *testing.T) {
	spec := "steps:\n- echo: \"{{ output }}" + strings.Repeat("x", 1<<20) + "\"\n"
	msg := templateDiag(t, spec, 2)
	wantIn(t, msg, "over the limit of 1 MiB")
}

func TestTemplateTotalOutputIsLimited(t *testing.T) {
	var b strings.Builder
	b.WriteString("steps:\n")
	for i := 0; i < 20; i++ {
		b.WriteString("- echo: \"{{ 'x'|ljust:1000000 }}\"\n")
	}
	_, ds := planText(t, DefaultRegistry(), b.String(), Vars{})
	errs := ds.Errors()
	if len(errs) != 1 || errs[0].Line != 18 {
		t.Fatalf("want one error, at the 17th step (line 18): %v", ds)
	}
	wantIn(t, errs[0].String(), "more than 16 MiB")
}

// TestTemplateRecursionRefused: a macro calling itself overflowed the Go
// stack, which kills the process (no recover).
func TestTemplateRecursionRefused(t *testing.T) {
	msg := templateDiag(t, "steps:\n- echo: \"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}\"\n", 2)
	wantIn(t, msg, "`macro`", "not available")
}

func TestTemplateRefusedTagsAndFilters(t *testing.T) {
	for tpl, want := range map[string]string{
		"{% lorem 1000000 w %}":              "`lorem`",
		"{% with a=output %}{% endwith %}":   "`with`",
		"{% filter upper %}x{% endfilter %}": "`filter`",
		"{% include 'x' %}":                  "`include`",
		"{{ output|random }}":                "`random`",
		"{{ output|escape }}":                "`escape`",
		"{{ output|floatformat:2 }}":         "`floatformat`",
		"{{ 1|stringformat:'%d' }}":          "`stringformat`",
	} {
		msg := templateDiag(t, "steps:\n- echo: \""+tpl+"\"\n", 2)
		wantIn(t, msg, want, "not available")
	}
}

// TestTemplateWordwrap: pongo2's wordwrap panicked when the last line has
// two words or more fewer than the others.
func TestTemplateWordwrap(t *testing.T) {
	p, ds := planText(t, DefaultRegistry(), "steps:\n- echo: \"{{ 'a b c d e'|wordwrap:3 }}\"\n", Vars{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	if got := p.Steps[0].Str("echo"); got != "a b c\nd e" {
		t.Fatalf("got %q", got)
	}
}

// TestTemplateMemoryIsBounded renders the hostile specs above and checks
// that none allocates more than 256 MiB (unbounded, they took gigabytes).
func TestTemplateMemoryIsBounded(t *testing.T) {
	specs := []string{
		nestedLoops("{{ i }}{{ j }}{{ k }}{{ l }}"),
		"steps:\n- echo: \"{{ 'x'|center:300000000 }}\"\n",
		"steps:\n- echo: |\n    {% set a = 'xxxxxxxx' %}\n" + strings.Repeat("    {% set a = a + a %}\n", 40),
		"steps:\n- echo: \"{% set a = 'x'|ljust:100000 %}{{ a|make_list|join:a }}\"\n",
	}
	for _, spec := range specs {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		planText(t, DefaultRegistry(), spec, Vars{})
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 256<<20 {
			t.Errorf("%d MiB allocated for %.60q", n>>20, spec)
		}
	}
}

// TestTemplateDeepExpression: pongo2 parses brackets by recursion; a
// million of them overflowed the Go stack, which kills the process.
func TestTemplateDeepExpression(t *testing.T) {
	spec := "steps:\n- echo: \"{{ " + strings.Repeat("(", 200000) + "1" + strings.Repeat(")", 200000) + " }}\"\n"
	msg := templateDiag(t, spec, 2)
	wantIn(t, msg, "more than 64 tokens")
}
