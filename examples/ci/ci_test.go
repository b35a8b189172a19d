// Package ci holds examples of CI jobs and a Kubernetes Job that build
// images with vmdb2 unprivileged; its test checks them against the README.
package ci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// examples are the files of this directory, each with the kinds of
// document it must hold (the "kind" of Kubernetes objects, or a top-level
// key of a CI file).
var examples = map[string][]string{
	"gitlab-ci.yml":       {"build-image"},
	"github-actions.yml":  {"jobs"},
	"kubernetes-job.yaml": {"PersistentVolumeClaim", "Job"},
}

// commandPrefixes start the lines of the examples that are commands the
// README must show verbatim.
var commandPrefixes = []string{"vmdb2 ", "mkdir ", "sudo sysctl ", "grep -q "}

// TestExamplesMatchREADME parses every example as YAML and checks that each
// command it runs appears, as written, in the README's "CI and containers"
// section, which names every example file.
func TestExamplesMatchREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := readmeSection(t, string(readme), "## CI and containers")
	files, err := filepath.Glob("*.y*ml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(examples) {
		t.Errorf("example files %v, want those of the examples table", files)
	}
	for name, want := range examples {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("the README's CI section does not name %s", name)
		}
		docs := parseAll(t, name, data)
		for _, w := range want {
			if !hasKey(docs, w) {
				t.Errorf("%s: no %q document or key", name, w)
			}
		}
		cmds := 0
		for _, doc := range docs {
			for _, line := range commandLines(doc) {
				cmds++
				if !strings.Contains(section, line) {
					t.Errorf("%s runs %q, which the README's CI section does not show", name, line)
				}
			}
		}
		if cmds == 0 {
			t.Errorf("%s runs no vmdb2 command", name)
		}
	}
}

func readmeSection(t *testing.T, readme, title string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n"+title+"\n")
	if !ok {
		t.Fatalf("the README has no %q section", title)
	}
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	return after
}

// parseAll decodes every YAML document of a file.
func parseAll(t *testing.T, name string, data []byte) []*yaml.Node {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: not valid YAML: %v", name, err)
		}
		docs = append(docs, &n)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", name)
	}
	return docs
}

// hasKey reports whether a top-level mapping of docs has key k, or a
// "kind: k".
func hasKey(docs []*yaml.Node, k string) bool {
	for _, d := range docs {
		if len(d.Content) == 0 || d.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := d.Content[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			if m[i].Value == k || (m[i].Value == "kind" && m[i+1].Value == k) {
				return true
			}
		}
	}
	return false
}

// commandLines returns the lines of every string of n that start with one
// of commandPrefixes, trimmed.
func commandLines(n *yaml.Node) []string {
	var out []string
	if n.Kind == yaml.ScalarNode {
		for _, line := range strings.Split(n.Value, "\n") {
			line = strings.TrimSpace(line)
			for _, p := range commandPrefixes {
				if strings.HasPrefix(line, p) {
					out = append(out, line)
				}
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, commandLines(c)...)
	}
	return out
}
