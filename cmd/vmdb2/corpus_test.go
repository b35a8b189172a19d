package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// corpusDir is testdata/corpus: real-world specs, with their provenance
// in its README.md.
func corpusDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "testdata", "corpus")
}

// corpusSpecs returns the corpus's specs; it fails when there are fewer
// than the README lists.
func corpusSpecs(t *testing.T) []string {
	t.Helper()
	dir := corpusDir(t)
	specs, err := filepath.Glob(filepath.Join(dir, "*.vmdb"))
	if err != nil || len(specs) < 20 {
		t.Fatalf("only %d specs in %s (%v): the corpus is part of the repository, see its README.md", len(specs), dir, err)
	}
	return specs
}

var provenanceRowRE = regexp.MustCompile("(?m)^\\| ([0-9][0-9]-[^ |]+\\.vmdb) \\| ([^ |]+/[^ |]+) \\| `[^`]+`[^|]* @ `([0-9a-f]{40})` \\| [^|]+ \\| ([0-9a-f]{16}) \\|$")

// TestCorpusProvenance: every spec of the corpus is listed in its README
// with the repository, path, commit and licence note it came from and the
// start of its sha256, and every listed spec is there with that content.
func TestCorpusProvenance(t *testing.T) {
	dir := corpusDir(t)
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, m := range provenanceRowRE.FindAllStringSubmatch(string(readme), -1) {
		if _, dup := listed[m[1]]; dup {
			t.Errorf("%s is listed twice", m[1])
		}
		listed[m[1]] = m[4]
	}
	for _, path := range corpusSpecs(t) {
		name := filepath.Base(path)
		want, ok := listed[name]
		if !ok {
			t.Errorf("%s is not in the provenance table of %s/README.md", name, dir)
			continue
		}
		delete(listed, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(data))[:16]; got != want {
			t.Errorf("%s: sha256 starts with %s, the README says %s: the copy was changed", name, got, want)
		}
	}
	for name := range listed {
		t.Errorf("%s is listed in the README but missing", name)
	}
}

// corpusExpectations is the last column of the corpus README's second
// table: the keys
// vmdb2 0.26 ignores in each spec, as warnings we must give (with the
// number of times), and the spec it rejects.
var corpusExpectations = map[string]struct {
	warnings   map[string]int // substring of a warning → count
	rejectLine int            // non-zero: must fail at this line
}{
	"09-vmdb2-2018-legacy-uefi.vmdb":         {warnings: map[string]int{"mount: `fs-tag`": 1, "grub: `rootfs`": 1}},
	"10-raspi3-2017-legacy-parttag.vmdb":     {warnings: map[string]int{"mount: `fs-tag`": 2}},
	"16-peachcloud-raspi-template.vmdb":      {rejectLine: 76},
	"23-tx6-installer-bullseye-minbase.vmdb": {warnings: map[string]int{"create-file: `trailing-newline`": 1}},
	"27-ubuntu-bionic-fork.vmdb":             {warnings: map[string]int{"debootstrap: unknown key `options`": 1}},
	"29-hoobs-image-template.vmdb":           {warnings: map[string]int{"create-file: `trailing-newline`": 2, "copy-file: `perm: 755` is the decimal number": 4, "copy-file: `perm: 440` is the decimal number": 1}},
}

// legacyKindNames maps spellings older specs use to the kind vmdb2 0.26
// runs them as (or would, for names 0.26 rejects but we accept).
var legacyKindNames = map[string]string{"mount-virtual-filesystems": "virtual-filesystems"}

var planStepRE = regexp.MustCompile(`(?m)^step (\d+) \(([^)]*):(\d+)\): ([a-z_-]+)`)

// vmdb2Kinds are the step-naming keys of vmdb2 0.26's runners.
var vmdb2Kinds = map[string]bool{
	"ansible": true, "apt": true, "cache-rootfs": true, "chroot": true, "copy-dir": true, "copy-file": true,
	"create-dir": true, "create-file": true, "cryptsetup": true, "debootstrap": true, "echo": true, "error": true,
	"fstab": true, "grub": true, "kpartx": true, "lvcreate": true, "mkfs": true, "mkimg": true, "mklabel": true,
	"mkpart": true, "mount": true, "qemu-debootstrap": true, "resize-rootfs": true, "set_part_flag": true,
	"shell": true, "unpack-rootfs": true, "vgcreate": true, "virtual-filesystems": true,
}

// expectedKinds reads a spec with a plain YAML parser and returns, for each
// step, the kind vmdb2 0.26 matches: the first key of the step that names a
// runner (in the corpus no step is ambiguous except chroot+shell, whose
// `shell` is the chroot runner's script).
func expectedKinds(t *testing.T, data []byte) ([]string, []int) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("corpus spec does not parse: %v", err)
	}
	root := doc.Content[0]
	var stepsNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "steps" {
			stepsNode = root.Content[i+1]
		}
	}
	var kinds []string
	var lines []int
	for _, step := range stepsNode.Content {
		first := ""
		for i := 0; i < len(step.Content); i += 2 {
			k := step.Content[i].Value
			if l, ok := legacyKindNames[k]; ok {
				k = l
			}
			if k == "chroot" || (vmdb2Kinds[k] && first == "") {
				first = k
			}
		}
		kinds = append(kinds, first)
		lines = append(lines, step.Line)
	}
	return kinds, lines
}

func TestCorpusDryRun(t *testing.T) {
	for _, path := range corpusSpecs(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			exp := corpusExpectations[name]
			// Run as a build would: where the spec's files are, with the
			// rootfs cache its unpack-rootfs and cache-rootfs steps need.
			work := t.TempDir()
			standIn(t, work, path)
			r := runVmdb2(t, work, "", "--dry-run", path, "--output", "out.img", "--rootfs-tarball", "rootfs.tar.gz")
			if exp.rejectLine != 0 {
				want := path + ":" + itoa(exp.rejectLine) + ": YAML syntax error"
				if r.code != 1 || !strings.Contains(r.stderr, want) {
					t.Fatalf("want exit 1 with %q; got %d:\n%s", want, r.code, r.stderr)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("dry-run failed (%d):\n%s", r.code, r.stderr)
			}
			data, _ := os.ReadFile(path)
			wantKinds, wantLines := expectedKinds(t, data)
			got := planStepRE.FindAllStringSubmatch(r.stdout, -1)
			if len(got) != len(wantKinds) {
				t.Fatalf("planned %d steps, spec has %d:\n%s", len(got), len(wantKinds), r.stdout)
			}
			for i, m := range got {
				if m[4] != wantKinds[i] || m[3] != itoa(wantLines[i]) {
					t.Errorf("step %d planned as %s at line %s, want %s at line %d", i+1, m[4], m[3], wantKinds[i], wantLines[i])
				}
			}
			// Every warning expected, and no other.
			warnings := 0
			for _, line := range strings.Split(r.stderr, "\n") {
				if strings.Contains(line, ": warning: ") {
					warnings++
					if !strings.HasPrefix(line, path+":") {
						t.Errorf("warning without file:line: %s", line)
					}
				} else if strings.TrimSpace(line) != "" {
					t.Errorf("unexpected stderr line: %s", line)
				}
			}
			total := 0
			var keys []string
			for w, n := range exp.warnings {
				keys = append(keys, w)
				total += n
				if c := strings.Count(r.stderr, w); c != n {
					t.Errorf("warning %q given %d times, want %d:\n%s", w, c, n, r.stderr)
				}
			}
			sort.Strings(keys)
			if warnings != total {
				t.Errorf("%d warnings, want %d (%v):\n%s", warnings, total, keys, r.stderr)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
