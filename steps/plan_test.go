package steps

import (
	"strings"
	"testing"
)

func planText(t *testing.T, reg *Registry, spec string, vars Vars) (*Plan, Diagnostics) {
	t.Helper()
	raw, ds := Load("t.vmdb", []byte(spec))
	if raw == nil {
		return nil, ds
	}
	p, pds := NewPlan(reg, raw, vars)
	return p, append(ds, pds...)
}

func TestTemplating(t *testing.T) {
	spec := `steps:
- echo: "{{ output }}|{{ rootfs_tarball }}|{{ arch }}|{{ nosuch }}|{{ v }}"
- echo: |
    line one
    line two
- echo: "a && b > c 'q' \"d\" <e>"
- echo: "{% if image %}img{% else %}noimg{% endif %}"
- echo: "{% raw %}{{ not rendered }}{% endraw %}"
- echo: "crlf\r\n"
- echo: |+
    keep


`
	p, ds := planText(t, DefaultRegistry(), spec, Vars{Output: "out.img", Arch: "amd64", Extra: map[string]string{"v": "val"}})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	want := []string{
		"out.img|None|amd64||val",
		"line one\nline two",
		`a && b > c 'q' "d" <e>`,
		"noimg",
		"{{ not rendered }}",
		"crlf",
		"keep\n\n",
	}
	for i, w := range want {
		if got := p.Steps[i].Str("echo"); got != w {
			t.Errorf("step %d: %q, want %q", i+1, got, w)
		}
	}
}

func TestTemplateErrorLines(t *testing.T) {
	spec := "steps:\n- chroot: /\n  shell: |\n    echo one\n    echo two\n    echo {{ x\n"
	_, ds := planText(t, DefaultRegistry(), spec, Vars{})
	if !ds.HasErrors() || ds.Errors()[0].Line != 6 {
		t.Fatalf("want error at line 6: %v", ds)
	}
}

func TestTemplatesCannotReadFiles(t *testing.T) {
	for _, tpl := range []string{`{% include "/etc/passwd" %}`, `{% ssi "/etc/passwd" %}`, `{% now "Y" %}`} {
		_, ds := planText(t, DefaultRegistry(), "steps:\n- echo: '"+tpl+"'\n", Vars{})
		if !ds.HasErrors() {
			t.Errorf("%s was accepted", tpl)
		}
	}
}

func TestKindMatchingRule(t *testing.T) {
	reg := DefaultRegistry()
	cases := []struct {
		keys []string
		want string
	}{
		{[]string{"mkimg", "size"}, "mkimg"},
		{[]string{"chroot", "shell", "root-fs"}, "chroot"},
		{[]string{"shell", "root-fs", "chroot"}, "shell"},
		{[]string{"cryptsetup", "tag", "password", "name"}, "cryptsetup"},
		{[]string{"cryptsetup", "tag", "key-file"}, "luks"},
		{[]string{"cryptsetup", "name", "key-file"}, "cryptsetup"},
		{[]string{"cryptsetup", "key-cmd", "name"}, "cryptsetup"},
		{[]string{"cryptsetup", "password", "name"}, "cryptsetup"},
		{[]string{"echo", "error", "teardown"}, "error"},
		{[]string{"error"}, ""},
		{[]string{"mount-virtual-filesystems"}, "virtual-filesystems"},
		{[]string{"unless", "echo"}, "echo"},
		{[]string{"mkpart", "device", "start"}, ""},
	}
	for _, c := range cases {
		k := reg.Match(c.keys)
		got := ""
		if k != nil {
			got = k.Name
		}
		if got != c.want {
			t.Errorf("%v matched %q, want %q", c.keys, got, c.want)
		}
	}
}

func TestDefaultsAndTypes(t *testing.T) {
	spec := `steps:
- create-file: /etc/x
  contents: hi
  perm: true
- apt: install
  tag: /
- debootstrap: bookworm
  target: /
  mirror: http://deb.debian.org/debian
`
	p, ds := planText(t, DefaultRegistry(), spec, Vars{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	if p.Steps[0].Int("perm") != 1 {
		t.Errorf("a boolean is an integer in vmdb2: perm=%d", p.Steps[0].Int("perm"))
	}
	if p.Steps[0].Int("uid") != 0 || !p.Steps[1].Bool("recommends") || p.Steps[1].Str("fs-tag") != "" {
		t.Errorf("defaults not filled")
	}
	if got := strings.Join(p.Steps[2].Strings("components"), ","); got != "main" {
		t.Errorf("components default %q", got)
	}
	if p.Steps[2].Str("variant") != "-" || !p.Steps[2].Bool("require_empty_target") {
		t.Errorf("debootstrap defaults")
	}
}

func TestEveryKindDocumented(t *testing.T) {
	for _, k := range DefaultRegistry().Kinds() {
		if k.Summary == "" || len(k.Keys) == 0 || k.Keys[0].Name != k.Primary || !k.Keys[0].Required {
			t.Errorf("kind %s: needs a summary and its primary key first, required", k.Name)
		}
	}
}

// TestUnimplementedKindIsReported: a plan with a kind this version cannot
// run lists it, with its line, so the build stops before the first step.
func TestUnimplementedKindIsReported(t *testing.T) {
	later := &Kind{Name: "later", Summary: "not yet", Keys: []Key{{Name: "later", Type: TStr, Required: true}}}
	reg := NewRegistry(echoKind, later)
	p, ds := planText(t, reg, "steps:\n- echo: first\n- later: x\n", Vars{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	got := p.Unimplemented()
	if len(got) != 1 || got[0].Line != 3 || !strings.Contains(got[0].Msg, "the `later` step is not implemented") {
		t.Errorf("Unimplemented() = %v", got)
	}
	if got := DefaultRegistry(); got != nil {
		for _, k := range got.Kinds() {
			if !k.Implemented {
				t.Errorf("kind %s is not implemented", k.Name)
			}
		}
	}
}
