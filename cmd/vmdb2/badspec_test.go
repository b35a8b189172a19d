package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadSpecs checks that each broken spec is refused before anything runs:
// exit status 1, a message naming file:line, and no file created.
func TestBadSpecs(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want []string // substrings of stderr, each normally "spec.vmdb:LINE: ..."
	}{
		{"yaml syntax", "steps:\n- echo: a\n\tteardown: b\n", []string{"spec.vmdb:3: YAML syntax error"}},
		{"bad indentation", "steps:\n- echo: a\n   x: y\n", []string{"spec.vmdb:3: YAML syntax error"}},
		{"empty file", "", []string{"spec.vmdb:1: spec is empty"}},
		{"no steps key", "stepz:\n- echo: a\n", []string{"spec.vmdb:1: the spec has no `steps:` key"}},
		{"steps not a list", "steps: hello\n", []string{"spec.vmdb:1: `steps:` must be a list"}},
		{"step not a mapping", "steps:\n- echo: a\n- just a string\n", []string{"spec.vmdb:3: each step must be a mapping"}},
		{"two documents", "steps: []\n---\nsteps: []\n", []string{"spec.vmdb:2: a spec file must hold one YAML document"}},
		{"unknown step kind", "steps:\n- echo: a\n- mkimage: x.img\n  size: 1G\n", []string{"spec.vmdb:3: no step kind has the keys `mkimage`, `size`; did you mean `mkimg`?"}},
		{"missing required key", "steps:\n- mkimg: x.img\n", []string{"spec.vmdb:2: step is incomplete: a mkimg step needs `size`"}},
		{"error without teardown", "steps:\n- error: x\n", []string{"spec.vmdb:2: step is incomplete: a error step needs `teardown`"}},
		{"string key given an integer", "steps:\n- mkimg: x.img\n  size: 1024\n", []string{"spec.vmdb:3: mkimg: key `size` must be a string, but YAML read 1024 as a integer; quote it"}},
		{"bool key given an integer", "steps:\n- apt: install\n  tag: /\n  recommends: 0\n", []string{"spec.vmdb:4: apt: key `recommends` must be a boolean"}},
		{"list key given a string", "steps:\n- apt: install\n  packages: vim\n", []string{"spec.vmdb:3: apt: key `packages` must be a list"}},
		{"null value", "steps:\n- echo: a\n  teardown:\n", []string{"spec.vmdb:3: echo: key `teardown` has no value"}},
		{"float value", "steps:\n- mkimg: x.img\n  size: 1.5\n", []string{"spec.vmdb:3: mkimg: key `size` is the number 1.5"}},
		{"date value", "steps:\n- echo: 2020-01-01\n", []string{"spec.vmdb:2: echo: key `echo` is read as a date"}},
		{"unless not a name", "steps:\n- echo: a\n  unless: 5\n", []string{"spec.vmdb:3: `unless` must be a flag name"}},
		{"template syntax", "steps:\n- echo: a\n- echo: \"{{ output \"\n", []string{"spec.vmdb:3: template error"}},
		{"template comment in shell", "steps:\n- echo: a\n- chroot: /\n  shell: |\n    echo ok\n    echo ${#list[@]}\n", []string{"spec.vmdb:6: template error", "{% raw %}"}},
		{"apt value", "steps:\n- apt: remove\n  tag: /\n", []string{"spec.vmdb:2: apt: the value must be `install`"}},
		{"grub flavour", "steps:\n- grub: coreboot\n  tag: /\n", []string{"spec.vmdb:2: grub: unknown GRUB flavour \"coreboot\""}},
		{"grub uefi without esp", "steps:\n- grub: uefi\n  tag: /\n", []string{"spec.vmdb:2: grub: uefi needs the tag of the EFI system partition"}},
		{"grub ieee1275 without prep", "steps:\n- grub: ieee1275\n  tag: /\n", []string{"spec.vmdb:2: grub: ieee1275 needs the tag of the PReP boot partition in `prep`"}},
		{"dirname without mount-on", "steps:\n- mount: boot\n  dirname: /boot\n", []string{"spec.vmdb:3: mount: `dirname` needs `mount-on`"}},
		{"part flag state", "steps:\n- set_part_flag: x.img\n  tag: boot\n  flag: esp\n  state: on-ish\n", []string{"spec.vmdb:5: set_part_flag: state must be"}},
		{"luks without key", "steps:\n- cryptsetup: root\n  tag: crypt\n", []string{"spec.vmdb:2: cryptsetup step MUST define one of key-file or key-cmd"}},
		{"mode out of range", "steps:\n- create-dir: /x\n  perm: 0200000\n", []string{"spec.vmdb:3: create-dir: perm 65536 is not a file mode"}},
		{"several problems at once", "steps:\n- mkimg: x.img\n- echo: a\n- bogus: 1\n- mkimg: y.img\n  size: 5\n",
			[]string{"spec.vmdb:2: step is incomplete", "spec.vmdb:4: no step kind has the keys `bogus`", "spec.vmdb:6: mkimg: key `size` must be a string", "3 problems in spec.vmdb"}},
		{"debootstrap empty mirror", "steps:\n- debootstrap: bookworm\n  target: /\n  mirror: \"\"\n", []string{"spec.vmdb:4: debootstrap: `mirror` is empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(c.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			r := runVmdb2(t, dir, "", "spec.vmdb", "--output", filepath.Join(dir, "out.img"))
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout should be empty without -v: %q", r.stdout)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stack trace: %s", r.stderr)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("files were created: %v", names)
			}
		})
	}
}

// TestWarningsDoNotStop checks that unknown keys are warned about, with
// their line, and the build goes on (vmdb2 ignores them silently).
func TestWarningsDoNotStop(t *testing.T) {
	spec := "steps:\n- echo: hello\n  teardwn: x\n  colour: red\n"
	r := runVmdb2(t, t.TempDir(), spec, "-v", "-", "--output", "x.img")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"<stdin>:3: warning: echo: unknown key `teardwn`, ignored (as vmdb2 does); did you mean `teardown`?", "<stdin>:4: warning: echo: unknown key `colour`"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "hello") {
		t.Errorf("step did not run: %s", r.stdout)
	}
}

// TestUnimplementedStepFailsBeforeRunning: a spec using a step this version
// cannot run yet must fail before the first step, so no half-built image.
func TestUnimplementedStepFailsBeforeRunning(t *testing.T) {
	spec := "steps:\n- echo: first\n- lvcreate: vg\n  name: root\n  size: 1G\n"
	r := runVmdb2(t, t.TempDir(), spec, "-v", "-", "--output", "x.img")
	if r.code != 1 || strings.Contains(r.stdout, "first\n") {
		t.Fatalf("exit %d stdout %s", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "<stdin>:3: the `lvcreate` step is not implemented") {
		t.Errorf("stderr: %s", r.stderr)
	}
}
