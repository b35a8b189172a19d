package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// standIn makes, in dir, an empty stand-in for every host file a spec
// reads (copy-file and copy-dir sources, Ansible playbooks and configs),
// as the spec's own repository would have them, so that a dry run of a
// corpus spec out of its repository checks the spec and not the missing
// checkout. Templated, absolute and `..` paths are left alone.
func standIn(t *testing.T, dir, specPath string) {
	t.Helper()
	data, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Steps []map[string]any `yaml:"steps"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return // the spec is refused for its YAML; nothing to stand in for
	}
	for _, step := range doc.Steps {
		for key, isDir := range map[string]bool{"src": false, "playbook": false, "config_file": false} {
			p, _ := step[key].(string)
			if _, ok := step["copy-dir"]; ok && key == "src" {
				isDir = true
			}
			if p == "" || strings.Contains(p, "{{") || filepath.IsAbs(p) || strings.Contains(p, "..") {
				continue
			}
			full := filepath.Join(dir, p)
			if isDir {
				err = os.MkdirAll(full, 0o755)
			} else if err = os.MkdirAll(filepath.Dir(full), 0o755); err == nil {
				err = os.WriteFile(full, nil, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}
