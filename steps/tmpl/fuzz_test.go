package tmpl

import (
	"errors"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"
)

// fuzzLimits are small, so that the fuzzer reaches every limit quickly.
var fuzzLimits = Limits{Source: 4096, Output: 4096, Tokens: 64, Depth: 20, Iterations: 20000, Total: 1 << 16, Time: 5 * time.Second}

// FuzzRender renders arbitrary templates: no panic escapes, every failure
// is an *Error, and no output is over its limit.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"{{ output }}", "{% if output %}a{% elif x %}b{% else %}c{% endif %}",
		"{% for c in output reversed %}{{ forloop.Counter }}{{ c }}{% empty %}-{% endfor %}",
		"{% set a = output + output %}{{ a|upper|center:20 }}", "{{ list|join:a }}",
		"{{ 1 % 0 }}", "{% cycle %}", "{{ 'a b c d e'|wordwrap:3 }}", "{% raw %}{{ x }}{% endraw %}",
		"{% for a in output %}{% for b in output %}{{ a }}{{ b }}{% endfor %}{% endfor %}",
		"{# c #}{% comment %}x{% endcomment %}{{- output -}}",
	} {
		f.Add(s)
	}
	vars := pongo2.Context{"output": "out.img", "list": []string{"a", "b"}}
	f.Fuzz(func(t *testing.T, src string) {
		out, err := New(fuzzLimits).Render(src, vars)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T is not a *tmpl.Error: %v", err, err)
			}
			return
		}
		if len(out) > fuzzLimits.Output && HasTemplate(src) {
			t.Fatalf("%d bytes of output, over the limit", len(out))
		}
	})
}
