package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/partition/export"
)

// options are the parsed command-line arguments.
type options struct {
	specFile      string
	output        string
	image         string
	rootfsTarball string
	verbose       bool
	logFile       string
	progress      string // --progress: progressAuto or progressJSON
	version       bool
	help          bool
	dryRun        bool
	seed          string
	checkRepro    bool
	compat        string // steps.Compat041 or steps.Compat026
	// cleartextDigests is where --check-reproducible has a build record
	// its LUKS containers' cleartext digests (not a command-line option).
	cleartextDigests string
	variables        map[string]string
	variableOrder    []string
	// exports are the --export files, in order; exportTargets the same,
	// checked before the build (cmd/vmdb2/export.go).
	exports       []string
	exportTargets []export.Target
	// bootCheck is --boot-check's timeout (0: no boot check).
	bootCheck time.Duration
}

// usageError is a command-line mistake: exit status 2, like argparse.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type optSpec struct {
	name     string // long name without dashes
	short    string // "" or a single letter
	hasValue bool
	optional bool // the value may be given with = or left out ("" then)
	set      func(o *options, value string) error
}

var optSpecs = []optSpec{
	{name: "output", hasValue: true, set: func(o *options, v string) error { o.output = v; return nil }},
	{name: "image", hasValue: true, set: func(o *options, v string) error { o.image = v; return nil }},
	{name: "rootfs-tarball", hasValue: true, set: func(o *options, v string) error { o.rootfsTarball = v; return nil }},
	{name: "verbose", short: "v", set: func(o *options, _ string) error { o.verbose = true; return nil }},
	{name: "log", hasValue: true, set: func(o *options, v string) error { o.logFile = v; return nil }},
	{name: "progress", hasValue: true, set: (*options).setProgress},
	{name: "version", set: func(o *options, _ string) error { o.version = true; return nil }},
	{name: "help", short: "h", set: func(o *options, _ string) error { o.help = true; return nil }},
	{name: "dry-run", set: func(o *options, _ string) error { o.dryRun = true; return nil }},
	{name: "check-reproducible", set: func(o *options, _ string) error { o.checkRepro = true; return nil }},
	{name: "seed", hasValue: true, set: func(o *options, v string) error { o.seed = v; return nil }},
	{name: "variable", hasValue: true, set: (*options).addVariable},
	{name: "compat", hasValue: true, set: (*options).setCompat},
	{name: "export", hasValue: true, set: (*options).addExport},
	{name: "boot-check", optional: true, set: (*options).setBootCheck},
}

// addVariable handles --variable NAME=VALUE like vmdb2: one pair of
// surrounding ' or " quotes is stripped from the value (all leading and
// trailing ones of that kind, as vmdb2 does); a name may be given once.
// Unlike vmdb2, the value may itself contain '='.
func (o *options) addVariable(arg string) error {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return usageError{fmt.Sprintf("--variable wants NAME=VALUE, got %q", arg)}
	}
	switch {
	case strings.HasPrefix(value, "'"):
		value = strings.Trim(value, "'")
	case strings.HasPrefix(value, `"`):
		value = strings.Trim(value, `"`)
	}
	switch name {
	case "output", "image", "rootfs_tarball":
		return usageError{fmt.Sprintf("--variable %s: %s is set by --%s, not by --variable", name, name, strings.ReplaceAll(name, "_", "-"))}
	}
	if _, dup := o.variables[name]; dup {
		return usageError{fmt.Sprintf("Duplicate definition of variable %q", name)}
	}
	if o.variables == nil {
		o.variables = map[string]string{}
	}
	o.variables[name] = value
	o.variableOrder = append(o.variableOrder, name)
	return nil
}

// parseArgs parses arguments the way vmdb2's argparse does: options before
// or after the spec file, --opt=value or --opt value, long options
// abbreviated to any unambiguous prefix, "--" ending options, "-" meaning
// standard input.
func parseArgs(args []string) (*options, error) {
	o := &options{}
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case arg == "-" || !strings.HasPrefix(arg, "-"):
			positional = append(positional, arg)
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			spec, err := findLong(name)
			if err != nil {
				return nil, err
			}
			if spec.hasValue && !hasValue {
				if i+1 >= len(args) {
					return nil, usageError{fmt.Sprintf("argument --%s: expected one argument", spec.name)}
				}
				i++
				value = args[i]
			} else if !spec.hasValue && !spec.optional && hasValue {
				return nil, usageError{fmt.Sprintf("argument --%s: ignored explicit argument %q", spec.name, value)}
			}
			if err := spec.set(o, value); err != nil {
				return nil, err
			}
		default:
			// Short options, possibly grouped (-vh).
			for j := 1; j < len(arg); j++ {
				spec := findShort(string(arg[j]))
				if spec == nil {
					return nil, usageError{fmt.Sprintf("unrecognized arguments: %s", arg)}
				}
				if spec.hasValue {
					return nil, usageError{fmt.Sprintf("unrecognized arguments: %s", arg)}
				}
				_ = spec.set(o, "")
			}
		}
	}
	if o.help || o.version {
		return o, nil
	}
	if err := o.checkProgress(); err != nil {
		return nil, err
	}
	if o.bootCheck > 0 && o.checkRepro {
		return nil, usageError{"--boot-check and --check-reproducible cannot be combined (boot-check the image of an ordinary build)"}
	}
	switch len(positional) {
	case 0:
		return nil, usageError{"the following arguments are required: specfile"}
	case 1:
		o.specFile = positional[0]
	default:
		return nil, usageError{fmt.Sprintf("unrecognized arguments: %s", strings.Join(positional[1:], " "))}
	}
	return o, nil
}

func findLong(name string) (*optSpec, error) {
	var matches []*optSpec
	for i := range optSpecs {
		if optSpecs[i].name == name {
			return &optSpecs[i], nil
		}
		if name != "" && strings.HasPrefix(optSpecs[i].name, name) {
			matches = append(matches, &optSpecs[i])
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, usageError{fmt.Sprintf("unrecognized arguments: --%s", name)}
	}
	var names []string
	for _, m := range matches {
		names = append(names, "--"+m.name)
	}
	sort.Strings(names)
	return nil, usageError{fmt.Sprintf("ambiguous option: --%s could match %s", name, strings.Join(names, ", "))}
}

func findShort(letter string) *optSpec {
	for i := range optSpecs {
		if optSpecs[i].short == letter {
			return &optSpecs[i]
		}
	}
	return nil
}
