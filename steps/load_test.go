package steps

import (
	"strings"
	"testing"
)

func loadOne(t *testing.T, yamlText string) *Value {
	t.Helper()
	raw, ds := Load("t.vmdb", []byte("steps:\n- echo: x\n  v: "+yamlText+"\n"))
	if ds.HasErrors() {
		t.Fatalf("%q: %v", yamlText, ds)
	}
	return raw.Steps[0].Get("v")
}

// TestYAML11Scalars checks the YAML 1.1 readings vmdb2 (PyYAML) gives.
func TestYAML11Scalars(t *testing.T) {
	cases := []struct {
		text string
		kind ValueKind
		i    int64
		b    bool
	}{
		{"yes", Bool, 0, true}, {"No", Bool, 0, false}, {"ON", Bool, 0, true}, {"off", Bool, 0, false},
		{"true", Bool, 0, true}, {"False", Bool, 0, false}, {"y", String, 0, false}, {"n", String, 0, false},
		{"0644", Int, 0o644, false}, {"0o644", String, 0, false}, {"0x1ff", Int, 0x1ff, false},
		{"0b101", Int, 5, false}, {"1:00", Int, 60, false}, {"1_000", Int, 1000, false}, {"08", String, 0, false},
		{"755", Int, 755, false}, {"-12", Int, -12, false}, {"+7", Int, 7, false}, {"0", Int, 0, false},
		{"~", Null, 0, false}, {"null", Null, 0, false}, {"", Null, 0, false},
		{"3.0", Float, 0, false}, {".inf", Float, 0, false}, {"1e5", String, 0, false}, {"1.5G", String, 0, false},
		{"2020-01-01", Date, 0, false}, {"4G", String, 0, false}, {"100%", String, 0, false},
		{"'0644'", String, 0, false}, {`"yes"`, String, 0, false}, {"!!str 0644", String, 0, false},
		{"!!int '12'", Int, 12, false},
	}
	for _, c := range cases {
		v := loadOne(t, c.text)
		if v.Kind != c.kind {
			t.Errorf("%q read as %v, want %v", c.text, v.Kind, c.kind)
			continue
		}
		if c.kind == Int && v.Int != c.i {
			t.Errorf("%q = %d, want %d", c.text, v.Int, c.i)
		}
		if c.kind == Bool && v.Bool != c.b {
			t.Errorf("%q = %v, want %v", c.text, v.Bool, c.b)
		}
	}
}

func TestYAMLStructure(t *testing.T) {
	raw, ds := Load("t.vmdb", []byte(`
base: &base
  teardown: td
  echo: base
steps:
  - <<: *base
    echo: merged
  - echo: a
    echo: b
`))
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	s0 := raw.Steps[0]
	if s0.Get("echo").Str != "merged" || s0.Get("teardown").Str != "td" {
		t.Errorf("merge key: %s", s0.Describe())
	}
	if got := raw.Steps[1].Get("echo").Str; got != "b" {
		t.Errorf("duplicate key: last should win, got %q", got)
	}
	if raw.Steps[1].Line != 8 {
		t.Errorf("line of step 2 = %d", raw.Steps[1].Line)
	}
}

func TestYAMLErrorsNoPanic(t *testing.T) {
	for _, text := range []string{"", "steps", "steps: [", "a: *x", "steps: !!binary aGk=", "[1, 2]", "steps:\n- {a: [b: c]}", "steps: 0b_", "steps:\n- echo: 0b_"} {
		raw, ds := Load("t.vmdb", []byte(text))
		if raw != nil && !ds.HasErrors() && text != "steps:\n- {a: [b: c]}" {
			t.Errorf("%q: no error", text)
		}
		for _, d := range ds {
			if !strings.HasPrefix(d.String(), "t.vmdb") {
				t.Errorf("%q: diagnostic without file: %s", text, d)
			}
		}
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("steps: []\n")
	_, ds := Load("bomb.vmdb", []byte(b.String()))
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "too many values") {
		t.Fatalf("alias bomb not refused: %v", ds)
	}
}
