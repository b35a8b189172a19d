package steps

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-rendered", false, "rewrite testdata/rendered.golden from the current template engine")

// renderVarSets are the variables the golden renders use: one build with
// --output, one with --image, --rootfs-tarball and --variables.
var renderVarSets = []Vars{
	{Output: "out.img", Arch: "amd64", Extra: map[string]string{"packages": "vim,curl,less", "greeting": "hello"}},
	{Image: "/dev/vdb", RootfsTarball: "cache.tar.gz", Arch: "arm64", Extra: map[string]string{"packages": "b,a", "greeting": "Grüße"}},
}

// renderedDump renders a spec with each variable set and lists every string
// value with its line, in spec order, plus the template errors.
func renderedDump(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, vars := range renderVarSets {
		raw, ds := Load(filepath.Base(path), data)
		if raw == nil {
			fmt.Fprintf(&b, "vars %d: not loaded: %v\n", i, ds)
			continue
		}
		_, pds := NewPlan(DefaultRegistry(), raw, vars)
		fmt.Fprintf(&b, "vars %d:\n", i)
		for _, d := range pds.Errors() {
			if strings.Contains(d.Msg, "template error") {
				fmt.Fprintf(&b, "  error %s\n", d)
			}
		}
		for _, s := range raw.Steps {
			dumpStrings(&b, s)
		}
	}
	return b.String()
}

func dumpStrings(b *strings.Builder, v *Value) {
	switch v.Kind {
	case String:
		fmt.Fprintf(b, "  %d: %q\n", v.Line, v.Str)
	case List:
		for _, item := range v.List {
			dumpStrings(b, item)
		}
	case Map:
		for _, e := range v.Map {
			dumpStrings(b, e.Value)
		}
	}
}

// TestTemplatesRenderAsBefore checks that every spec of the repository and
// of the corpus renders exactly as it did with the unrestricted engine
// (testdata/rendered.golden was written by it): the template limits are far
// above anything these specs reach. testdata/templates.vmdb, which uses the
// template features specs may use, is kept in full; the others by hash.
func TestTemplatesRenderAsBefore(t *testing.T) {
	specs, _ := filepath.Glob("../testdata/*.vmdb")
	examples, _ := filepath.Glob("../examples/*.vmdb")
	corpus, _ := filepath.Glob(filepath.Join(corpusPath(), "*.vmdb"))
	if len(corpus) < 15 {
		t.Fatalf("only %d corpus specs in %s", len(corpus), corpusPath())
	}
	specs = append(append(specs, examples...), corpus...)
	sort.Slice(specs, func(i, j int) bool { return filepath.Base(specs[i]) < filepath.Base(specs[j]) })
	var b strings.Builder
	b.WriteString("== templates.vmdb\n" + renderedDump(t, "testdata/templates.vmdb"))
	for _, path := range specs {
		fmt.Fprintf(&b, "== %s %x\n", filepath.Base(path), sha256.Sum256([]byte(renderedDump(t, path))))
	}
	golden := filepath.Join("testdata", "rendered.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			g, w := at(gl, i), at(wl, i)
			if g != w {
				t.Errorf("rendered differently from %s:\n got: %s\nwant: %s", golden, g, w)
			}
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(nothing)"
}

// corpusPath is the repository's copy of the real-world specs.
func corpusPath() string { return filepath.Join("..", "testdata", "corpus") }
