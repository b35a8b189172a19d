package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadSpec feeds arbitrary text through loading, templating and
// planning: it must never panic, and every diagnostic must name the file.
func FuzzLoadSpec(f *testing.F) {
	seeds := []string{
		"steps:\n- echo: foo\n  teardown: foo_teardown\n",
		"steps:\n- mkimg: \"{{ output }}\"\n  size: 4G\n",
		"steps:\n- create-file: /etc/x\n  contents: |\n    a\n  perm: 0644\n  unless: [rootfs_unpacked]\n",
		"a: &a [1, 2]\nsteps:\n- <<: {echo: x}\n  teardown: *a\n",
		"steps:\n- chroot: /\n  shell: \"{% if x %}{{ y|upper }}{% endif %}{#\"\n",
		"steps: 0b_\n",
		"steps:\n- grub: uefi\n  tag: /\n  timeout: 1:30\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	// The repository's specs, and the template features specs may use
	// (testdata/fuzz/FuzzLoadSpec holds the inputs that once crashed).
	files, _ := filepath.Glob("../testdata/*.vmdb")
	if files = append(files, "testdata/templates.vmdb"); len(files) > 0 {
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(string(data))
			}
		}
	}
	reg := DefaultRegistry()
	f.Fuzz(func(t *testing.T, text string) {
		raw, ds := Load("fuzz.vmdb", []byte(text))
		if raw != nil {
			p, pds := NewPlan(reg, raw, Vars{Output: "o.img", Arch: "amd64"})
			ds = append(ds, pds...)
			if !ds.HasErrors() {
				for _, s := range p.Steps {
					_ = s.Summary()
					_ = s.ResolvedKeys()
				}
			}
		} else if !ds.HasErrors() {
			t.Fatalf("no spec and no error")
		}
		for _, d := range ds {
			if !strings.HasPrefix(d.String(), "fuzz.vmdb") {
				t.Fatalf("diagnostic without file: %q", d.String())
			}
		}
	})
}
