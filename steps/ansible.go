package steps

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// ansibleKind runs an Ansible playbook against the root filesystem, as
// vmdb2 does: `ansible-playbook -c chroot -i INVENTORY --tags TAGS -e
// @VARS PLAYBOOK`, with an inventory naming the root filesystem's tree in
// the group `group`, and the step's `extra_vars` plus `rootfs_tarball`
// (the --rootfs-tarball value, or null) as extra variables.
//
// ansible-playbook is the host's; it runs as root of the build's user
// namespace, without confinement (like the `shell` step), as the chroot
// connection plugin (community.general.chroot, in Debian's `ansible`
// package) insists on running as root. The plugin runs every command of a
// task (and its file transfers) through its chroot program, which here
// hands the command to the build (ansible_chroot.go): each runs confined to
// the root filesystem's tree exactly as a `chroot` step's, with the
// namespace's /proc, /dev, /sys, /run, /tmp, the host's resolv.conf
// content lent and services kept from starting, and nothing of it on the
// host. The target needs Python 3 for Ansible's modules.
//
// The inventory and the variables are written into the build's stage,
// not into $TMPDIR, and Ansible's local temporary files go there too
// (unless ANSIBLE_LOCAL_TEMP is set), so a build leaves nothing in the
// user's home. As in vmdb2, every ansible step's teardown removes the files
// of all ansible steps; the stage is removed at the end anyway.
var ansibleKind = &Kind{
	Name:        "ansible",
	Summary:     "run an Ansible playbook against the root filesystem",
	Implemented: true,
	Keys: []Key{
		{Name: "ansible", Type: TStr, Required: true},
		{Name: "playbook", Type: TStr, Required: true},
		{Name: "group", Type: TStr, Default: "image"},
		{Name: "tags", Type: TStr, Default: "all"},
		{Name: "config_file", Type: TStr, Default: ""},
		{Name: "extra_vars", Type: TMap, Default: nil},
	},
	Run:      runAnsible,
	Teardown: teardownAnsible,
}

// ansibleFilePrefix starts the name of every file an ansible step keeps in
// the stage's meta directory; teardowns remove them all.
const ansibleFilePrefix = "ansible-"

func runAnsible(b *Build, s *Step) error {
	_, dir, err := b.mountedTree(s.Str("ansible"))
	if err != nil {
		return err
	}
	env := append(os.Environ(), "ANSIBLE_NOCOWS=1")
	if cfg := s.Str("config_file"); cfg != "" {
		abs, err := hostPath(cfg)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("Ansible config file %s does not exist (config_file is relative to the current directory, %s)", cfg, cwd())
		}
		env = append(env, "ANSIBLE_CONFIG="+abs)
	}
	playbook := s.Str("playbook")
	if _, err := os.Stat(playbook); err != nil {
		return fmt.Errorf("Ansible playbook %s does not exist (playbook is relative to the current directory, %s)", playbook, cwd())
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return errors.New("ansible-playbook is not installed on this host: install the Debian package `ansible` (ansible-core alone lacks the chroot connection)")
	}

	st, err := b.Stage()
	if err != nil {
		return err
	}
	inventory, err := writeMetaTemp(st.MetaPath(""), ansibleFilePrefix+"inventory-*", []byte("["+s.Str("group")+"]\n"+dir+"\n"))
	if err != nil {
		return fmt.Errorf("writing the Ansible inventory: %w", err)
	}
	b.Progress("Created %s for Ansible inventory", inventory)

	vars, err := ansibleVars(s.MapValue("extra_vars"), b.Settings.RootfsTarball)
	if err != nil {
		return err
	}
	varsFile, err := writeMetaTemp(st.MetaPath(""), ansibleFilePrefix+"vars-*.yaml", vars)
	if err != nil {
		return fmt.Errorf("writing the Ansible variables: %w", err)
	}
	b.Progress("Created %s for Ansible variables", varsFile)

	// Helper directories, removed as soon as ansible-playbook is done.
	if _, set := os.LookupEnv("ANSIBLE_LOCAL_TEMP"); !set {
		tmp, err := os.MkdirTemp(st.MetaPath(""), ansibleFilePrefix+"tmp-*")
		if err != nil {
			return fmt.Errorf("creating Ansible's temporary directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		env = append(env, "ANSIBLE_LOCAL_TEMP="+tmp)
	}
	chrootEnv, stop, err := b.ansibleChroot(st.MetaPath(""), dir)
	if err != nil {
		return err
	}
	defer stop()
	env = append(env, chrootEnv...)

	err = b.InNamespace(userns.Cmd{
		Argv: []string{"ansible-playbook", "-c", "chroot", "-i", inventory, "--tags", s.Str("tags"), "-e", "@" + varsFile, playbook},
		Env:  env,
	})
	if err != nil && b.ctx.Err() == nil {
		if !hasPython3(dir) {
			return fmt.Errorf("%w\n(the image has no python3, which Ansible needs in the target: install it before this step, e.g. with `debootstrap`'s or an `apt: install` step's packages: [python3])", err)
		}
	}
	return err
}

// teardownAnsible removes the inventories, variable files and temporary
// directories of every ansible step, as vmdb2's teardown does.
func teardownAnsible(b *Build, s *Step) error {
	if b.stage == nil {
		return nil
	}
	matches, err := filepath.Glob(b.stage.MetaPath(ansibleFilePrefix + "*"))
	if err != nil {
		return err
	}
	sort.Strings(matches)
	var errs []error
	for _, f := range matches {
		b.Progress("Removing %s", f)
		if err := os.RemoveAll(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeMetaTemp writes data into a new file of dir named after pattern
// (as os.CreateTemp) and returns its path.
func writeMetaTemp(dir, pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// ansibleVars renders extra_vars with rootfs_tarball added (null when
// there is no --rootfs-tarball) as YAML, keys in the spec's order.
// Strings are double-quoted so that Ansible's YAML 1.1 reader takes them
// as the strings they are ("yes", "0755", "1:20").
func ansibleVars(extra *Value, rootfsTarball string) ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	tarball := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	if rootfsTarball != "" {
		tarball = yamlString(rootfsTarball)
	}
	replaced := false
	if extra != nil {
		for _, e := range extra.Map {
			v := yamlValue(e.Value)
			if e.Key == "rootfs_tarball" {
				v, replaced = tarball, true
			}
			doc.Content = append(doc.Content, yamlString(e.Key), v)
		}
	}
	if !replaced {
		doc.Content = append(doc.Content, yamlString("rootfs_tarball"), tarball)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("writing extra_vars as YAML: %w", err)
	}
	return out, nil
}

func yamlString(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

func yamlValue(v *Value) *yaml.Node {
	switch v.Kind {
	case Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, e := range v.Map {
			n.Content = append(n.Content, yamlString(e.Key), yamlValue(e.Value))
		}
		return n
	case List:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, item := range v.List {
			n.Content = append(n.Content, yamlValue(item))
		}
		return n
	case Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool)}
	case Int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int, 10)}
	case Null:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	// Strings; floats and dates are refused when the plan is made.
	return yamlString(v.Str)
}

// hasPython3 reports whether the tree at root has a python3 interpreter
// where Ansible's interpreter discovery looks first, looked up inside the
// tree as the chroot connection finds it.
func hasPython3(root string) bool {
	r, err := stage.OpenRoot(root)
	if err != nil {
		return true // cannot tell: say nothing
	}
	defer r.Close()
	for _, p := range []string{"usr/bin/python3", "usr/local/bin/python3", "bin/python3"} {
		if r.Exists(p) {
			return true
		}
	}
	return false
}

func cwd() string {
	d, err := os.Getwd()
	if err != nil {
		return "?"
	}
	return strings.TrimSuffix(d, "/")
}
