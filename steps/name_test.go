package steps

import (
	"strings"
	"testing"
)

// TestStepNameAsWritten: a step is named as the spec wrote it, in its
// summary (progress) and in its plan-time messages: `cryptsetup` for the
// luks kind, a legacy spelling for the kind it names.
func TestStepNameAsWritten(t *testing.T) {
	spec := `steps:
- cryptsetup: root
  tag: crypt
  key-file: k
  frobnicate: 1
- mount-virtual-filesystems: /
- virtual-filesystems: /
`
	p, ds := planText(t, DefaultRegistry(), spec, Vars{Output: "x.img"})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	for i, want := range []struct{ kind, name, summary string }{
		{"luks", "cryptsetup", "cryptsetup root"},
		{"virtual-filesystems", "mount-virtual-filesystems", "mount-virtual-filesystems /"},
		{"virtual-filesystems", "virtual-filesystems", "virtual-filesystems /"},
	} {
		s := p.Steps[i]
		if s.Kind.Name != want.kind || s.Name() != want.name || s.Summary() != want.summary {
			t.Errorf("step %d: kind %s, name %q, summary %q; want %s, %q, %q", i+1, s.Kind.Name, s.Name(), s.Summary(), want.kind, want.name, want.summary)
		}
	}
	if !strings.Contains(ds.Error(), "t.vmdb:5: warning: cryptsetup: unknown key `frobnicate`") {
		t.Errorf("the unknown key's warning does not name the step as written:\n%s", ds.Error())
	}
}
