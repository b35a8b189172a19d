package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileTemplates are the template inputs of the trust issue: each crashed
// vmdb2 ("internal error", no line) or took gigabytes, in --dry-run too.
var hostileTemplates = []struct {
	name, spec, want string
}{
	{"modulo by zero", "steps:\n- echo: a\n- echo: \"{{ 1 % 0 }}\"\n", "spec.vmdb:3: template error: division or modulo by zero"},
	{"cycle", "steps:\n- echo: |\n    a\n    {% cycle %}\n", "spec.vmdb:4: template error: the `cycle` tag is not available"},
	{"fuzzer crash", "steps:\n- 0: 0{{!o%0000}}0", "spec.vmdb:2: template error: division or modulo by zero"},
	{"four nested loops", "steps:\n- echo: \"{% set a = '" + strings.Repeat("x", 200) + "' %}" +
		"{% for i in a %}{% for j in a %}{% for k in a %}{% for l in a %}{{ i }}" +
		"{% endfor %}{% endfor %}{% endfor %}{% endfor %}\"\n", "spec.vmdb:2: template error: "},
	{"center", "steps:\n- echo: \"{{ 'x'|center:300000000 }}\"\n", "spec.vmdb:2: template error: center: width 300000000 exceeds 1 MiB"},
}

// TestHostileTemplates: each is a spec error with file:line and exit 1,
// with and without --dry-run, and nothing is created.
func TestHostileTemplates(t *testing.T) {
	for _, c := range hostileTemplates {
		for _, dry := range []bool{true, false} {
			t.Run(c.name+map[bool]string{true: " dry-run", false: " build"}[dry], func(t *testing.T) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(c.spec), 0o644); err != nil {
					t.Fatal(err)
				}
				args := []string{"spec.vmdb", "--output", "out.img"}
				if dry {
					args = append(args, "--dry-run")
				}
				checkTemplateRefused(t, dir, runVmdb2(t, dir, "", args...), c.want)
			})
		}
	}
}

// TestHostileTemplatesAsUser: the same as the ordinary user.
func TestHostileTemplatesAsUser(t *testing.T) {
	uid, gid := ordinaryUser(t)
	bin := userBinary(t)
	for _, c := range hostileTemplates {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(c.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			chownTree(t, dir, uid, gid)
			checkTemplateRefused(t, dir, runAs(t, uid, gid, dir, nil, bin, "spec.vmdb", "--output", "out.img"), c.want)
		})
	}
}

func checkTemplateRefused(t *testing.T, dir string, r result, want string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("want exit 1 and %q; got %d:\n%s", want, r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "internal error") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("a crash: %s", r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files were created: %v", entries)
	}
}
