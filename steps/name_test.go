package steps

import (
	"errors"
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

// TestRunErrorsNameStepAsWritten: a failing step and a failing teardown
// are named in their errors by the key the spec wrote, not by the kind
// that ran them.
func TestRunErrorsNameStepAsWritten(t *testing.T) {
	internal := &Kind{Name: "internal-name", Primary: "written", Summary: "fail", Implemented: true,
		Keys:     []Key{{Name: "written", Type: TStr, Required: true}},
		Run:      func(b *Build, s *Step) error { return errors.New("run broke") },
		Teardown: func(b *Build, s *Step) error { return errors.New("teardown broke") },
	}
	res, _ := runSpec(t, testRegistry(internal), "steps:\n- written: x\n")
	if res.Err == nil || res.Err.Error() != "t.vmdb:2: written: run broke" {
		t.Errorf("run error %v", res.Err)
	}
	if len(res.TeardownErrors) != 1 || res.TeardownErrors[0].Error() != "t.vmdb:2: teardown of written: teardown broke" {
		t.Errorf("teardown errors %v", res.TeardownErrors)
	}
}
