package steps

import (
	"fmt"
	"sort"
	"strings"
)

// KeyType is the type a step key's value must have after YAML 1.1 reading.
type KeyType int

// Key types, with vmdb2's Python isinstance rules: a boolean is accepted
// where an integer is wanted, an integer is not accepted as a boolean.
const (
	TStr KeyType = iota
	TInt
	TBool
	TList
	TMap
	TScalar // any of string, integer or boolean (used by legacy keys)
)

func (t KeyType) String() string {
	switch t {
	case TStr:
		return "string"
	case TInt:
		return "integer"
	case TBool:
		return "boolean"
	case TList:
		return "list"
	case TMap:
		return "mapping"
	case TScalar:
		return "string, integer or boolean"
	}
	return "?"
}

// Key describes one key a step kind understands.
type Key struct {
	Name     string
	Type     KeyType
	Required bool
	// Default is the value used when an optional key is absent: a string,
	// int64, bool, []string or nil (empty mapping).
	Default any
	// Legacy, when set, marks a key vmdb2 0.26 does not know (an older or
	// forked spelling). It is accepted with a warning carrying this text,
	// which says how it is treated.
	Legacy string
	// Secret marks a key whose value (a passphrase) is never shown or
	// logged: ResolvedKeys gives "(secret)".
	Secret bool
}

// Kind is one step kind: its keys and what it does.
type Kind struct {
	// Name is the kind's name as vmdb2 documents it (e.g. "mkimg", "luks").
	Name string
	// Primary is the key that names the step in a spec; usually Name, but
	// "luks" and "cryptsetup" share the key `cryptsetup`.
	Primary string
	// LegacyNames are older spellings of the primary key, accepted with a
	// warning (e.g. "mount-virtual-filesystems").
	LegacyNames []string
	Keys        []Key
	Summary     string
	// Check adds kind-specific plan-time checks (allowed values and so on).
	Check func(s *Step, report func(line int, sev Severity, format string, args ...any))
	// Run, Teardown and RunEvenIfSkipped implement the step; nil means
	// nothing to do. Implemented false means this version cannot run the
	// kind yet: planning a build with it fails before anything runs.
	Run              func(b *Build, s *Step) error
	Teardown         func(b *Build, s *Step) error
	RunEvenIfSkipped func(b *Build, s *Step) error
	Implemented      bool
}

func (k *Kind) key(name string) *Key {
	for i := range k.Keys {
		if k.Keys[i].Name == name {
			return &k.Keys[i]
		}
	}
	return nil
}

func (k *Kind) requiredKeys() []string {
	var out []string
	for _, key := range k.Keys {
		if key.Required {
			out = append(out, key.Name)
		}
	}
	return out
}

// Registry holds the known step kinds, in the order they are listed.
type Registry struct {
	kinds []*Kind
}

// NewRegistry builds a registry from kinds; duplicate names panic because
// they are a programming error in the table, not a user error.
func NewRegistry(kinds ...*Kind) *Registry {
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k.Name] {
			panic("duplicate step kind " + k.Name)
		}
		seen[k.Name] = true
		if k.Primary == "" {
			k.Primary = k.Name
		}
	}
	return &Registry{kinds: kinds}
}

// Kinds returns every kind, sorted by name.
func (r *Registry) Kinds() []*Kind {
	out := append([]*Kind(nil), r.kinds...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the kind called name, or nil.
func (r *Registry) Lookup(name string) *Kind {
	for _, k := range r.kinds {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// canonicalKey maps a legacy primary-key spelling to the current one.
func (r *Registry) canonicalKey(key string) (string, *Kind) {
	for _, k := range r.kinds {
		for _, old := range k.LegacyNames {
			if old == key {
				return k.Primary, k
			}
		}
	}
	return key, nil
}

// Match decides a step's kind from the keys it has. The rule, fixed and
// documented in README.md ("How a step's kind is chosen"):
//
//  1. A kind is a candidate when every one of its required keys is present
//     (legacy spellings of a primary key count as the key).
//  2. Among candidates, the one with the most required keys wins.
//  3. On a tie, the kind whose primary key comes first in the step wins,
//     then the kind listed first in the registry.
//
// vmdb2 0.26 takes the first candidate in directory-listing order, which is
// undefined for the two ambiguous cases real specs can hit (chroot+shell+
// root-fs, and cryptsetup+tag+password+name); this rule makes them
// deterministic.
func (r *Registry) Match(keys []string) *Kind {
	present := map[string]int{}
	for i, key := range keys {
		canon, _ := r.canonicalKey(key)
		if _, dup := present[canon]; !dup {
			present[canon] = i
		}
	}
	var best *Kind
	for _, k := range r.kinds {
		ok := true
		for _, req := range k.requiredKeys() {
			if _, has := present[req]; !has {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if best == nil {
			best = k
			continue
		}
		nb, nk := len(best.requiredKeys()), len(k.requiredKeys())
		if nk > nb || (nk == nb && present[k.Primary] < present[best.Primary]) {
			best = k
		}
	}
	return best
}

// explainNoMatch says why no kind matched a step with these keys.
func (r *Registry) explainNoMatch(keys []string) string {
	present := map[string]bool{}
	for _, key := range keys {
		canon, _ := r.canonicalKey(key)
		present[canon] = true
	}
	var hints []string
	for _, key := range keys {
		canon, _ := r.canonicalKey(key)
		for _, k := range r.kinds {
			if k.Primary != canon {
				continue
			}
			var missing []string
			for _, req := range k.requiredKeys() {
				if !present[req] {
					missing = append(missing, req)
				}
			}
			if len(missing) > 0 {
				hints = append(hints, fmt.Sprintf("a %s step needs %s", k.Name, quoteList(missing)))
			}
		}
	}
	if len(hints) > 0 {
		return "step is incomplete: " + strings.Join(hints, "; or ")
	}
	msg := fmt.Sprintf("no step kind has the keys %s", quoteList(keys))
	if s := r.suggestKind(keys); s != "" {
		msg += "; did you mean `" + s + "`?"
	}
	return msg + " (run `vmdb2 --help` for the list of step kinds)"
}

func (r *Registry) suggestKind(keys []string) string {
	var names []string
	for _, k := range r.kinds {
		names = append(names, k.Primary)
		names = append(names, k.LegacyNames...)
	}
	for _, key := range keys {
		if s := closest(key, names); s != "" {
			return s
		}
	}
	return ""
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "`" + s + "`"
	}
	return strings.Join(q, ", ")
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if c == s {
			continue
		}
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
