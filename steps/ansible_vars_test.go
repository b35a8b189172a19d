package steps

import "testing"

// TestAnsibleVarsJSON: extra_vars become one JSON object in the spec's
// order, typed as YAML 1.1 read them, with rootfs_tarball last (or in
// place of the spec's), as vmdb2 0.28's json.dumps.
func TestAnsibleVarsJSON(t *testing.T) {
	spec := "steps:\n- ansible: /\n  playbook: p.yml\n  extra_vars:\n    greeting: hello\n    word: \"yes\"\n    \"on\": on\n    n: 7\n    list: [1, two, \"1:20\"]\n    nested: {a: b}\n"
	p, ds := planText(t, DefaultRegistry(), spec, Vars{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	got, err := ansibleVars(p.Steps[0].MapValue("extra_vars"), "/c/rootfs.tar.gz")
	want := `{"greeting": "hello", "word": "yes", "on": true, "n": 7, "list": [1, "two", "1:20"], "nested": {"a": "b"}, "rootfs_tarball": "/c/rootfs.tar.gz"}`
	if err != nil || string(got) != want {
		t.Errorf("got  %s %v\nwant %s", got, err, want)
	}
	if got, _ := ansibleVars(nil, ""); string(got) != `{"rootfs_tarball": null}` {
		t.Errorf("no extra_vars: %s", got)
	}
	p, _ = planText(t, DefaultRegistry(), "steps:\n- ansible: /\n  playbook: p.yml\n  extra_vars:\n    rootfs_tarball: mine\n    x: 1\n", Vars{})
	if got, _ := ansibleVars(p.Steps[0].MapValue("extra_vars"), "t.tar"); string(got) != `{"rootfs_tarball": "t.tar", "x": 1}` {
		t.Errorf("spec's rootfs_tarball: %s", got)
	}
}
