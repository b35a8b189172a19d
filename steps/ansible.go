package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// ansibleKind runs an Ansible playbook against the root filesystem, as
// vmdb2 0.28 and later do: `ansible-playbook -c chroot -i INVENTORY --tags
// TAGS -e JSON PLAYBOOK`, with an inventory naming the root filesystem's
// tree in the group `group`, and the step's `extra_vars` plus
// `rootfs_tarball` (the --rootfs-tarball value, or null) as JSON on the
// command line (0.26 wrote them to a file; the image is the same).
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
// The inventory is written into the build's stage,
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
	env, playbook, err := ansibleHostSide(s)
	if err != nil {
		return err
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
		Argv: []string{"ansible-playbook", "-c", "chroot", "-i", inventory, "--tags", s.Str("tags"), "-e", string(vars), playbook},
		Env:  env,
		Tree: dir,
	})
	if err != nil && b.ctx.Err() == nil && !hasPython3(dir) {
		return fmt.Errorf("%w\n(the image has no python3, which Ansible needs in the target: install it before this step, e.g. with `debootstrap`'s or an `apt: install` step's packages: [python3])", err)
	}
	return err
}

// ansibleHostSide checks what the step needs on the host (its config file,
// its playbook, ansible-playbook) and returns ansible-playbook's
// environment so far.
func ansibleHostSide(s *Step) (env []string, playbook string, err error) {
	env = append(os.Environ(), "ANSIBLE_NOCOWS=1")
	if cfg := s.Str("config_file"); cfg != "" {
		abs, err := hostPath(cfg)
		if err != nil {
			return nil, "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, "", fmt.Errorf("Ansible config file %s does not exist (config_file is relative to the current directory, %s)", cfg, cwd())
		}
		env = append(env, "ANSIBLE_CONFIG="+abs)
	}
	playbook = s.Str("playbook")
	if _, err := os.Stat(playbook); err != nil {
		return nil, "", fmt.Errorf("Ansible playbook %s does not exist (playbook is relative to the current directory, %s)", playbook, cwd())
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return nil, "", errors.New("ansible-playbook is not installed on this host: install the Debian package `ansible` (ansible-core alone lacks the chroot connection)")
	}
	return env, playbook, nil
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
// there is no --rootfs-tarball) as one JSON object, keys in the spec's
// order, as vmdb2's json.dumps does: a spec's rootfs_tarball is replaced
// in its place, otherwise it comes last. JSON keeps each value's type
// (the string "yes" stays a string for Ansible).
func ansibleVars(extra *Value, rootfsTarball string) ([]byte, error) {
	var tarball any
	if rootfsTarball != "" {
		tarball = rootfsTarball
	}
	var out bytes.Buffer
	out.WriteByte('{')
	replaced := false
	if extra != nil {
		for i, e := range extra.Map {
			if i > 0 {
				out.WriteString(", ")
			}
			var err error
			if e.Key == "rootfs_tarball" {
				replaced = true
				err = writeJSON(&out, e.Key, tarball)
			} else {
				err = writeJSONKey(&out, e.Key, e.Value)
			}
			if err != nil {
				return nil, fmt.Errorf("writing extra_vars as JSON: %w", err)
			}
		}
	}
	if !replaced {
		if extra != nil && len(extra.Map) > 0 {
			out.WriteString(", ")
		}
		if err := writeJSON(&out, "rootfs_tarball", tarball); err != nil {
			return nil, err
		}
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// writeJSONKey writes `"key": value` for a spec value.
func writeJSONKey(out *bytes.Buffer, key string, v *Value) error {
	k, err := json.Marshal(key)
	if err != nil {
		return err
	}
	out.Write(k)
	out.WriteString(": ")
	return writeJSONValue(out, v)
}

// writeJSON writes `"key": value` for a Go value.
func writeJSON(out *bytes.Buffer, key string, v any) error {
	k, err := json.Marshal(key)
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	out.Write(k)
	out.WriteString(": ")
	out.Write(b)
	return nil
}

// writeJSONValue writes a spec value as JSON, mappings in their order.
func writeJSONValue(out *bytes.Buffer, v *Value) error {
	switch v.Kind {
	case Map:
		out.WriteByte('{')
		for i, e := range v.Map {
			if i > 0 {
				out.WriteString(", ")
			}
			if err := writeJSONKey(out, e.Key, e.Value); err != nil {
				return err
			}
		}
		out.WriteByte('}')
		return nil
	case List:
		out.WriteByte('[')
		for i, item := range v.List {
			if i > 0 {
				out.WriteString(", ")
			}
			if err := writeJSONValue(out, item); err != nil {
				return err
			}
		}
		out.WriteByte(']')
		return nil
	}
	var scalar any
	switch v.Kind {
	case Bool:
		scalar = v.Bool
	case Int:
		scalar = v.Int
	case Null:
		scalar = nil
	default:
		// Strings; floats and dates are refused when the plan is made.
		scalar = v.Str
	}
	b, err := json.Marshal(scalar)
	if err != nil {
		return err
	}
	out.Write(b)
	return nil
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
