package steps

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/flosch/pongo2/v6"
)

// Step is one planned step: its kind and its keys, checked and with
// defaults filled in.
type Step struct {
	Index int // 0-based position in the spec
	File  string
	Line  int
	Kind  *Kind
	raw   *Value            // the step mapping after templating
	vals  map[string]*Value // every key of the kind, given or defaulted
	given map[string]bool
	// Unless is the step's `unless` value (nil, a string or a list).
	Unless *Value
	// written is the step's naming key as the spec wrote it ("" when the
	// step was made in code): `cryptsetup` for a luks step, a legacy
	// spelling such as `mount-virtual-filesystems`.
	written string
}

// Where is "file:line" of the step, for messages.
func (s *Step) Where() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// Name is the step's kind as the spec wrote it, the name progress and
// messages use: a user who wrote `cryptsetup:` reads "cryptsetup", not
// the name of the kind that runs it.
func (s *Step) Name() string {
	if s.written != "" {
		return s.written
	}
	return s.Kind.Name
}

// Str returns a string key's value.
func (s *Step) Str(key string) string {
	if v := s.vals[key]; v != nil && v.Kind == String {
		return v.Str
	}
	return ""
}

// Int returns an integer key's value (a YAML boolean counts as 0 or 1, as
// in vmdb2).
func (s *Step) Int(key string) int64 {
	v := s.vals[key]
	switch {
	case v == nil:
		return 0
	case v.Kind == Bool && v.Bool:
		return 1
	case v.Kind == Int:
		return v.Int
	}
	return 0
}

// Bool returns a boolean key's value.
func (s *Step) Bool(key string) bool {
	v := s.vals[key]
	return v != nil && v.Kind == Bool && v.Bool
}

// Strings returns a list key's items as strings.
func (s *Step) Strings(key string) []string {
	v := s.vals[key]
	if v == nil || v.Kind != List {
		return nil
	}
	out := make([]string, 0, len(v.List))
	for _, item := range v.List {
		out = append(out, scalarText(item))
	}
	return out
}

// MapValue returns a mapping key's value (possibly an empty mapping).
func (s *Step) MapValue(key string) *Value {
	if v := s.vals[key]; v != nil && v.Kind == Map {
		return v
	}
	return &Value{Kind: Map}
}

// Given reports whether the spec wrote key (rather than it being defaulted).
func (s *Step) Given(key string) bool { return s.given[key] }

// KeyLine is the line of key in the spec, or the step's line.
func (s *Step) KeyLine(key string) int {
	if e := s.raw.entry(key); e != nil {
		return e.KeyLine
	}
	return s.Line
}

// Summary is a one-line description: kind and primary value.
func (s *Step) Summary() string {
	v := s.Str(s.Kind.Primary)
	if i := strings.IndexByte(v, '\n'); i >= 0 {
		v = v[:i] + " …"
	}
	if len(v) > 60 {
		v = v[:57] + "…"
	}
	if v == "" {
		return s.Name()
	}
	return s.Name() + " " + v
}

// ResolvedKeys lists the step's keys with their values in the kind's key
// order, marking defaults; used by --dry-run.
func (s *Step) ResolvedKeys() []ResolvedKey {
	var out []ResolvedKey
	for _, k := range s.Kind.Keys {
		v := s.vals[k.Name]
		if v == nil {
			continue
		}
		value := v.Describe()
		if k.Secret && s.given[k.Name] {
			value = "(secret)"
		}
		out = append(out, ResolvedKey{Name: k.Name, Value: value, Default: !s.given[k.Name]})
	}
	if s.Unless != nil {
		out = append(out, ResolvedKey{Name: "unless", Value: s.Unless.Describe()})
	}
	return out
}

// ResolvedKey is one key of a planned step.
type ResolvedKey struct {
	Name    string
	Value   string
	Default bool
}

func scalarText(v *Value) string {
	switch v.Kind {
	case String:
		return v.Str
	case Int:
		return strconv.FormatInt(v.Int, 10)
	case Bool:
		if v.Bool {
			return "true"
		}
		return "false"
	}
	return v.Str
}

// Vars are the template variables of a build.
type Vars struct {
	Output, Image, RootfsTarball string // "" renders as None, as in vmdb2
	Arch                         string
	Extra                        map[string]string // --variable NAME=VALUE
}

func (v Vars) context() pongo2.Context {
	return v.contextWith(func(name, val string) any {
		if val == "" {
			return None(0)
		}
		return val
	})
}

// contextWith builds the template context with opt deciding the value of
// each path option (output, image, rootfs_tarball) from its setting.
func (v Vars) contextWith(opt func(name, val string) any) pongo2.Context {
	ctx := pongo2.Context{}
	for name, val := range v.Extra {
		ctx[name] = val
	}
	ctx["output"] = opt("output", v.Output)
	ctx["image"] = opt("image", v.Image)
	ctx["rootfs_tarball"] = opt("rootfs_tarball", v.RootfsTarball)
	if _, overridden := v.Extra["arch"]; !overridden {
		ctx["arch"] = v.Arch
	}
	return ctx
}

// seedContext is the context of the second rendering each step gets, the
// one the default seed hashes (see Plan.DefaultSeed): the path options
// given on the command line render as fixed placeholders, so the seed does
// not depend on where the image, the image file or the rootfs cache are.
// An unset --output or --image renders as a marker that is false like
// None, so the planner sees where a spec uses an option the build was not
// given.
func (v Vars) seedContext() pongo2.Context {
	return v.contextWith(func(name, val string) any {
		switch {
		case val != "":
			return "\x00vmdb2-path:" + name + "\x00"
		case name == "output":
			return unsetOutput(0)
		case name == "image":
			return unsetImage(0)
		}
		return None(0)
	})
}

// unsetOutput and unsetImage stand for an unset --output or --image in the
// seed rendering: false in {% if %} as None is, rendered as a marker.
type (
	unsetOutput int
	unsetImage  int
)

func (unsetOutput) String() string { return unsetMarker("output") }
func (unsetImage) String() string  { return unsetMarker("image") }

func unsetMarker(name string) string { return "\x00vmdb2-unset:" + name + "\x00" }

// Plan is a checked spec: every step with its kind, ready to run.
type Plan struct {
	File  string
	Steps []*Step
	// broken lists the spec's steps (by Index) that could not be planned,
	// with their kind when one matched.
	broken map[int]*Kind
	seed   string
	// bootLoaders are what Preflight found the grub steps install.
	bootLoaders []BootLoader
}

// NewPlan renders and checks every step of a loaded spec. All problems are
// returned at once; the plan is usable only if there is no error among them.
func NewPlan(reg *Registry, raw *RawSpec, vars Vars) (*Plan, Diagnostics) {
	var ds Diagnostics
	plan := &Plan{File: raw.File, broken: map[int]*Kind{}}
	render := newSpecRender(raw.File, vars.context())
	// The seed's rendering has a budget of its own: it renders every value
	// a second time.
	seedRender := newSpecRender(raw.File, vars.seedContext())
	seed := sha256.New()
	seed.Write([]byte("vmdb2-seed-2\x00"))
	for i, item := range raw.Steps {
		seedItem := item.clone()
		var ignored Diagnostics
		seedRender.value(seedItem, &ignored)
		if vars.Output != "" || vars.Image != "" {
			unsetUses(seedItem, raw.File, &ds)
		}
		before := len(ds)
		if render.value(item, &ds); render.spent() {
			break
		}
		rendered := len(ds) == before
		s := planStep(reg, raw.File, i, item, rendered, &ds)
		if s == nil || !rendered {
			plan.broken[i] = reg.Match(keysOf(item))
			continue
		}
		plan.Steps = append(plan.Steps, s)
		hashStep(seed, s.Kind, seedItem)
	}
	plan.seed = fmt.Sprintf("%x", seed.Sum(nil))
	return plan, ds
}

// hashStep adds a step to the default seed: its kind (which decides the
// defaults) and every key as written with its value as rendered by the
// seed context, in the spec's order.
func hashStep(h hash.Hash, kind *Kind, item *Value) {
	fmt.Fprintf(h, "%s\x00", kind.Name)
	for _, e := range item.Map {
		fmt.Fprintf(h, "%s=%s\x00", e.Key, e.Value.Describe())
	}
	h.Write([]byte("\n"))
}

// unsetUses reports every value that renders an unset --output or --image
// (vmdb2 renders None there, which no step can use).
func unsetUses(v *Value, file string, ds *Diagnostics) {
	switch v.Kind {
	case String:
		low := strings.ToLower(v.Str)
		for _, c := range []struct{ name, given string }{{"output", "--image"}, {"image", "--output"}} {
			if strings.Contains(low, unsetMarker(c.name)) {
				other := map[string]string{"output": "image", "image": "output"}[c.name]
				*ds = append(*ds, Diagnostic{File: file, Line: v.Line, Msg: fmt.Sprintf(
					"`{{ %s }}` renders as None here, since this build was given %s, not --%s: write {{ %s }}, or build with --%s",
					c.name, c.given, c.name, other, c.name)})
			}
		}
	case List:
		for _, item := range v.List {
			unsetUses(item, file, ds)
		}
	case Map:
		for _, e := range v.Map {
			unsetUses(e.Value, file, ds)
		}
	}
}

// clone copies a value deeply.
func (v *Value) clone() *Value {
	c := *v
	c.List, c.Map = nil, nil
	for _, item := range v.List {
		c.List = append(c.List, item.clone())
	}
	for _, e := range v.Map {
		c.Map = append(c.Map, &Entry{Key: e.Key, KeyLine: e.KeyLine, Value: e.Value.clone()})
	}
	return &c
}

// planStep matches a step to its kind and checks its keys; checks false
// (its values could not be rendered) leaves out the kind's own checks.
func planStep(reg *Registry, file string, index int, item *Value, checks bool, ds *Diagnostics) *Step {
	report := func(line int, sev Severity, format string, args ...any) {
		*ds = append(*ds, Diagnostic{File: file, Line: line, Severity: sev, Msg: fmt.Sprintf(format, args...)})
	}
	keys := keysOf(item)
	kind := reg.Match(keys)
	if kind == nil {
		report(item.Line, Error, "%s", reg.explainNoMatch(keys))
		return nil
	}
	s := &Step{Index: index, File: file, Line: item.Line, Kind: kind, raw: item,
		vals: map[string]*Value{}, given: map[string]bool{}, written: writtenName(reg, kind, keys)}
	bad := false
	for _, e := range item.Map {
		if !planKey(reg, s, e, report) {
			bad = true
		}
	}
	for _, key := range kind.Keys {
		// Match guarantees required keys exist; one missing here was
		// present but rejected above.
		if _, ok := s.vals[key.Name]; !ok && !key.Required {
			s.vals[key.Name] = defaultValue(key.Default, item.Line)
		}
	}
	if bad || !checks {
		return nil
	}
	if kind.Check != nil {
		before := len(*ds)
		kind.Check(s, report)
		if Diagnostics((*ds)[before:]).HasErrors() {
			return nil
		}
	}
	return s
}

// planKey checks one key of step s and records its value; false means an
// error was reported (an unknown key is only warned about and ignored).
func planKey(reg *Registry, s *Step, e *Entry, report func(line int, sev Severity, format string, args ...any)) bool {
	kind := s.Kind
	name := e.Key
	if canon, legacyKind := reg.canonicalKey(name); legacyKind == kind {
		report(e.KeyLine, Warning, "`%s` is an old name of the `%s` step (vmdb2 0.26 does not know it); running it as `%s`", name, canon, canon)
		name = canon
	}
	if name == "unless" {
		s.Unless = e.Value
		if e.Value.Kind == String || e.Value.Kind == List && allStrings(e.Value) {
			return true
		}
		report(e.KeyLine, Error, "`unless` must be a flag name or a list of flag names (like `unless: rootfs_unpacked`), not a %s", e.Value.Kind)
		return false
	}
	if msg := checkScalarKinds(e.Value); msg != "" {
		report(e.Value.Line, Error, "%s: key `%s` %s", s.Name(), e.Key, msg)
		return false
	}
	key := kind.key(name)
	if key == nil {
		msg := fmt.Sprintf("%s: unknown key `%s`, ignored (as vmdb2 does)", s.Name(), e.Key)
		var names []string
		for _, k := range kind.Keys {
			names = append(names, k.Name)
		}
		if c := closest(e.Key, names); c != "" {
			msg += fmt.Sprintf("; did you mean `%s`?", c)
		}
		report(e.KeyLine, Warning, "%s", msg)
		return true
	}
	if key.Legacy != "" {
		report(e.KeyLine, Warning, "%s: `%s` is not a vmdb2 0.26 key: %s", s.Name(), e.Key, key.Legacy)
	}
	if msg := typeMismatch(key, e.Value); msg != "" {
		report(e.Value.Line, Error, "%s: %s", s.Name(), msg)
		return false
	}
	s.vals[name] = e.Value
	s.given[name] = true
	return true
}

// writtenName is the key among keys that names kind: its primary key or a
// legacy spelling of it, as written.
func writtenName(reg *Registry, kind *Kind, keys []string) string {
	for _, key := range keys {
		if canon, _ := reg.canonicalKey(key); canon == kind.Primary {
			return key
		}
	}
	return kind.Name
}

// keysOf lists a step's keys in the spec's order.
func keysOf(item *Value) []string {
	keys := make([]string, len(item.Map))
	for i, e := range item.Map {
		keys[i] = e.Key
	}
	return keys
}

func allStrings(v *Value) bool {
	for _, item := range v.List {
		if item.Kind != String {
			return false
		}
	}
	return true
}

// checkScalarKinds rejects the YAML types vmdb2 cannot pass to a step
// (null, float, date), anywhere inside a value.
func checkScalarKinds(v *Value) string {
	switch v.Kind {
	case Null:
		return "has no value (YAML null); vmdb2 rejects nulls in steps: give a value or remove the key"
	case Float:
		return fmt.Sprintf("is the number %s (YAML float); quote it if it is text, e.g. \"%s\"", v.Str, v.Str)
	case Date:
		return fmt.Sprintf("is read as a date (%s); quote it: \"%s\"", v.Str, v.Str)
	case List:
		for _, item := range v.List {
			if msg := checkScalarKinds(item); msg != "" {
				return "has an item that " + msg
			}
		}
	case Map:
		for _, e := range v.Map {
			if msg := checkScalarKinds(e.Value); msg != "" {
				return fmt.Sprintf("has a key `%s` that %s", e.Key, msg)
			}
		}
	}
	return ""
}

// typeMismatch applies vmdb2's isinstance checks, with a message that says
// how to fix the spec.
func typeMismatch(key *Key, v *Value) string {
	ok := false
	switch key.Type {
	case TStr:
		ok = v.Kind == String
	case TInt:
		ok = v.Kind == Int || v.Kind == Bool
	case TBool:
		ok = v.Kind == Bool
	case TList:
		ok = v.Kind == List
	case TMap:
		ok = v.Kind == Map
	case TScalar:
		ok = v.Kind == String || v.Kind == Int || v.Kind == Bool
	}
	if ok {
		return ""
	}
	msg := fmt.Sprintf("key `%s` must be a %s, but YAML read %s as a %s", key.Name, key.Type, v.Describe(), v.Kind)
	switch {
	case key.Type == TStr && (v.Kind == Int || v.Kind == Bool):
		msg += fmt.Sprintf("; quote it: %s: \"%s\"", key.Name, v.Str)
	case key.Type == TBool && v.Kind == Int:
		msg += "; write true or false"
	case key.Type == TBool && v.Kind == String:
		msg += "; write true or false without quotes"
	case key.Type == TList && v.Kind == String:
		msg += fmt.Sprintf("; write a YAML list, e.g. %s: [%s]", key.Name, v.Str)
	}
	return msg
}

func defaultValue(d any, line int) *Value {
	switch x := d.(type) {
	case string:
		return &Value{Kind: String, Str: x, Line: line}
	case int:
		return &Value{Kind: Int, Int: int64(x), Line: line}
	case int64:
		return &Value{Kind: Int, Int: x, Line: line}
	case bool:
		return &Value{Kind: Bool, Bool: x, Line: line}
	case []string:
		v := &Value{Kind: List, Line: line}
		for _, s := range x {
			v.List = append(v.List, &Value{Kind: String, Str: s, Line: line})
		}
		return v
	case nil:
		return &Value{Kind: Map, Line: line}
	}
	panic(fmt.Sprintf("bad default %#v", d))
}

// Unimplemented reports the steps whose kind this version cannot run yet,
// so a build fails before anything runs instead of half way.
func (p *Plan) Unimplemented() Diagnostics {
	var ds Diagnostics
	for _, s := range p.Steps {
		if !s.Kind.Implemented {
			ds = append(ds, Diagnostic{File: s.File, Line: s.Line,
				Msg: fmt.Sprintf("the `%s` step is not implemented in this version of vmdb2 (Go); `--dry-run` shows the plan", s.Name())})
		}
	}
	return ds
}
