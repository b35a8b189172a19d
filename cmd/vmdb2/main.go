// Command vmdb2 builds disk images from vmdb2 specification files: a
// drop-in, Go reimplementation of Debian's vmdb2 that needs no root, loop
// devices or mounts by default.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmdb2-go/vmdb2/stage/userns"
	"github.com/vmdb2-go/vmdb2/steps"
)

// version is what --version prints: the vmdb2 release whose behaviour this
// program reproduces, and this program's own version.
const version = "0.26+go0.1"

// Exit statuses, as vmdb2's (0, 1, 2) plus the shell's convention for
// signals.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitHangup      = 129 // SIGHUP
	exitInterrupted = 130 // SIGINT
	exitTerminated  = 143 // SIGTERM
)

func main() {
	// In a process re-executed inside the build's user namespace this runs
	// the requested command or helper and never returns.
	userns.Init()
	// Started by the ansible step as its chroot program: run the command
	// in the target and never return.
	if code, ok := steps.AnsibleChroot(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	var disp *display
	// A bug must still end in one clear line, never a Go stack trace.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "vmdb2: internal error (please report it): %v\n", r)
			code = exitFailure
		}
		if disp != nil {
			disp.finished(code)
		}
	}()
	opts, err := parseArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, usageLine)
		fmt.Fprintf(stderr, "vmdb2: error: %v\n", err)
		return exitUsage
	}
	if opts.help {
		fmt.Fprint(stdout, helpText())
		return exitOK
	}
	if opts.version {
		fmt.Fprintln(stdout, version)
		return exitOK
	}
	disp = newDisplay(opts, stdout, stderr)
	return runBuild(opts, args, stdin, stdout, disp)
}

// runBuild does what the parsed command line asks for beyond help and
// version: a dry run, a reproducibility check or a build.
func runBuild(opts *options, args []string, stdin io.Reader, stdout io.Writer, disp *display) int {
	if opts.output == "" && opts.image == "" && !opts.dryRun {
		disp.plainError("I don't know what to do, re-run with --help",
			"(give --output FILE to build a new image, or --image FILE to build into an existing one)")
		return exitFailure
	}
	if opts.logFile != "" {
		f, err := openLog(opts.logFile)
		if err != nil {
			disp.errorf("%v", err)
			return exitFailure
		}
		defer f.Close()
		disp.log = f
		disp.logf("INFO", "Starting vmdb2 version %s", version)
		disp.logf("INFO", "Arguments: %s", steps.ShellQuote(args))
	}
	if !checkExports(opts, disp) {
		return exitFailure
	}
	if opts.checkRepro && !opts.dryRun {
		return checkReproducible(opts, disp)
	}
	plan, ok := loadPlan(opts, stdin, disp)
	if opts.dryRun {
		// The plan, and exactly what a real build would refuse before
		// its first step.
		if plan != nil {
			printPlan(stdout, plan)
		}
		if !ok {
			return exitFailure
		}
		return exitOK
	}
	if !ok {
		return exitFailure
	}
	return build(opts, plan, disp)
}

// loadPlan reads, templates and checks the spec, then simulates the build
// on this host (steps.Plan.Preflight): everything that can be known before
// the first step is checked here, before anything is written. It reports
// every problem and returns the plan (nil when the spec itself could not
// be planned) and whether the build may start.
func loadPlan(opts *options, stdin io.Reader, disp *display) (*steps.Plan, bool) {
	name, data, err := readSpec(opts, stdin, disp)
	if err != nil {
		disp.buildStarted(name, nil, "")
		disp.errorf("cannot read the spec: %v", err)
		return nil, false
	}
	raw, ds := steps.Load(name, data)
	var plan *steps.Plan
	if raw != nil {
		var pds steps.Diagnostics
		plan, pds = steps.NewPlan(steps.DefaultRegistry(), raw, steps.Vars{
			Output: opts.output, Image: opts.image, RootfsTarball: opts.rootfsTarball,
			Arch: steps.HostArch(), Extra: opts.variables,
		})
		incomplete := pds.HasErrors() || ds.HasErrors()
		ds = append(ds, pds...)
		ds = append(ds, plan.Unimplemented()...)
		ds = append(ds, plan.Preflight(steps.NewHost(opts.output, opts.image, opts.rootfsTarball))...)
		if opts.bootCheck > 0 && !incomplete {
			ds = append(ds, bootCheckPlan(plan)...)
		}
		if incomplete {
			plan = nil // some steps are missing from it
		}
	}
	disp.buildStarted(name, plan, opts.seed)
	for _, d := range ds.Sorted() {
		disp.diagnostic(d)
	}
	if n := len(ds.Errors()); n > 0 {
		disp.logf("ERROR", "%d problem(s) in the spec; nothing was done", n)
		if n > 1 {
			fmt.Fprintf(disp.stderr, "vmdb2: %d problems in %s; nothing was done\n", n, name)
		}
		return plan, false
	}
	return plan, true
}

// readSpec reads the spec file, or standard input for "-", and returns the
// name messages use for it.
func readSpec(opts *options, stdin io.Reader, disp *display) (string, []byte, error) {
	if opts.specFile == "-" {
		disp.progress("Load spec from stdin")
		data, err := io.ReadAll(stdin)
		return "<stdin>", data, err
	}
	disp.progress("Load spec file %s", opts.specFile)
	data, err := os.ReadFile(opts.specFile)
	return opts.specFile, data, err
}

// build runs the plan, turning SIGINT, SIGTERM and SIGHUP into an orderly
// stop: the running step's processes are killed, teardowns run, and the
// exit status tells which signal stopped the build. After a failure or a
// stop, the output is dealt with by outputAfterFailure.
func build(opts *options, plan *steps.Plan, disp *display) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caught, stop := stopOnSignals(cancel, disp)
	defer stop()

	epoch, err := sourceDateEpoch()
	if err != nil {
		disp.errorf("%v", err)
		return exitFailure
	}
	out := noteOutput(opts)
	b := steps.NewBuild(plan, steps.Settings{
		Output: opts.output, Image: opts.image, RootfsTarball: opts.rootfsTarball, Arch: steps.HostArch(),
		SourceDateEpoch: epoch, Seed: opts.seed, CleartextDigests: opts.cleartextDigests, Compat: opts.compat,
		OutputShown: opts.verbose,
	}, disp)
	res := b.Run(ctx, context.Background())

	if sig, ok := caught.Load().(syscall.Signal); ok {
		disp.logf("ERROR", "Interrupted by %v", sig)
		out.afterFailure(disp)
		return 128 + int(sig)
	}
	if res.Err != nil {
		disp.logf("ERROR", "An error occurred, exiting")
		out.afterFailure(disp)
		return exitFailure
	}
	if len(res.TeardownErrors) > 0 {
		// vmdb2 exits 0 here; a failed teardown may leave a broken image, so
		// this program says so with its exit status. The image is kept: the
		// failure may be the stage's removal, after a complete image.
		disp.plainError(fmt.Sprintf("vmdb2: all steps ran but %d teardown(s) failed; the image may be incomplete", len(res.TeardownErrors)))
		disp.logf("ERROR", "Teardowns failed")
		return exitFailure
	}
	if opts.bootCheck > 0 && !bootCheck(ctx, out.path, opts.bootCheck, b.BootLoaders(), disp) {
		if sig, ok := caught.Load().(syscall.Signal); ok {
			return 128 + int(sig)
		}
		return exitFailure
	}
	if code := exportImage(ctx, opts, b, caught, disp); code != exitOK {
		return code
	}
	disp.progress("All went fine.")
	disp.logf("INFO", "Ending, all OK")
	return exitOK
}

// stopOnSignals cancels the build at the first SIGINT, SIGTERM or SIGHUP
// (a closed terminal or a dropped ssh session stops the build as cleanly
// as ^C does) and records which one came; later ones only say to wait.
// SIGPIPE is ignored, so that a reader of the output that went away does
// not kill the build before its teardowns (Go would exit at once on a
// broken stdout otherwise): the output is then lost, the log is not.
// stop undoes the handling.
func stopOnSignals(cancel func(), disp *display) (caught *atomic.Value, stop func()) {
	caught = &atomic.Value{}
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		for sig := range sigc {
			s, _ := sig.(syscall.Signal)
			if s == syscall.SIGPIPE {
				continue
			}
			if caught.CompareAndSwap(nil, s) {
				fmt.Fprintf(disp.stderr, "vmdb2: %v received, stopping and cleaning up\n", sig)
				cancel()
				continue
			}
			fmt.Fprintln(disp.stderr, "vmdb2: still cleaning up; please wait (SIGKILL would leave the stage behind)")
		}
	}()
	return caught, func() { signal.Stop(sigc); close(sigc) }
}

// outputState is what the build's image file was before the build.
type outputState struct {
	path    string
	given   string // "--output" or "--image"
	existed bool   // it existed (as anything) before the build started
}

// noteOutput records, before the build starts, whether its image file
// already exists.
func noteOutput(opts *options) outputState {
	o := outputState{path: opts.output, given: "--output"}
	if o.path == "" {
		o.path, o.given = opts.image, "--image"
	}
	_, err := os.Lstat(o.path)
	o.existed = !errors.Is(err, fs.ErrNotExist)
	return o
}

// afterFailure says that the image of a failed or stopped build is
// incomplete, and removes it when this build created it: a regular
// --output file that did not exist before the build. An --image, a block
// device, a symbolic link or any file that existed before the build is
// left where it is.
func (o outputState) afterFailure(disp *display) {
	if o.path == "" {
		return
	}
	fi, err := os.Lstat(o.path)
	if err != nil {
		return // the build stopped before making it
	}
	if o.given == "--output" && !o.existed && fi.Mode().IsRegular() {
		if err := os.Remove(o.path); err == nil {
			disp.errorf("the build did not finish; removed the incomplete output %s, which it had created", o.path)
			return
		}
	}
	why := "it is " + o.given
	if o.given == "--output" {
		why = "it existed before the build"
	}
	disp.errorf("the build did not finish: %s is incomplete (kept: %s)", o.path, why)
}

// printPlan writes the --dry-run plan: each step, its kind and its keys.
func printPlan(w io.Writer, plan *steps.Plan) {
	fmt.Fprintf(w, "Plan for %s: %d steps\n", plan.File, len(plan.Steps))
	for i, s := range plan.Steps {
		note := ""
		if !s.Kind.Implemented {
			note = "  [not implemented yet]"
		}
		fmt.Fprintf(w, "step %d (%s): %s%s\n", i+1, s.Where(), s.Kind.Name, note)
		for _, k := range s.ResolvedKeys() {
			def := ""
			if k.Default {
				def = "  (default)"
			}
			fmt.Fprintf(w, "    %s: %s%s\n", k.Name, indentMultiline(k.Value), def)
		}
	}
}

func indentMultiline(s string) string {
	return strings.ReplaceAll(s, "\n", "\n      ")
}

const usageLine = "usage: vmdb2 [-h] [--version] [-v] [--log FILE] [--output FILE | --image FILE] [--rootfs-tarball FILE] [--variable NAME=VALUE] [--progress=MODE] [--seed STRING] [--compat VERSION] [--export FILE] [--check-reproducible] [--boot-check[=SECONDS]] [--dry-run] SPEC"

func helpText() string {
	var b strings.Builder
	b.WriteString(usageLine + "\n\n")
	b.WriteString(`Build a disk image from a vmdb2 specification file (SPEC, or - for standard
input). A spec is a YAML mapping with a "steps:" list; each step's values are
templates (Jinja-like: {{ output }}) rendered before anything runs, and every
step is checked before the first one starts.

Options:
  --output FILE           build a new image at FILE (available as {{ output }})
  --image FILE            build into an existing image file or block device
                          (available as {{ image }})
  --rootfs-tarball FILE   cache of the root filesystem for unpack-rootfs and
                          cache-rootfs ({{ rootfs_tarball }})
  --variable NAME=VALUE   define a template variable (repeatable)
  -v, --verbose           show progress: each step, its duration, the commands
                          it runs and their output
  --log FILE              append a detailed, timestamped log to FILE
  --progress=MODE         auto (default): -v's progress on stdout, as vmdb2,
                          and without -v a live status line when stdout is a
                          terminal (nothing otherwise); json: the build's
                          events, one JSON object per line, on stdout (see
                          README.md for the schema)
  --seed STRING           the seed every identifier of the image (UUIDs, GUIDs,
                          disk signature, volume ids) is derived from; default:
                          a hash of the spec without the paths of the command
                          line, so rebuilds anywhere are identical
  --compat VERSION        make the image vmdb2 VERSION would: 0.41 (the
                          default) or 0.26 (its fstab lines and the build
                          host's resolv.conf; see the README's differences
                          table)
  --export FILE           after a successful build, also write the image
                          converted to FILE's format, told by its name
                          (repeatable): .qcow2 .vmdk .vhdx (qemu-img),
                          .img.zst .img.xz .img.gz (compressed raw image),
                          .bmap (bmaptool's block map)
  --check-reproducible    build twice (the second image in another directory
                          beside the first, as .vmdb2-check-*/FILE.check) with
                          one seed and SOURCE_DATE_EPOCH, and say where the
                          images first differ, if they do
  --boot-check[=SECONDS]  after the build, boot the image in QEMU (snapshot
                          mode: the image is not changed) with the firmware
                          of each boot loader its grub steps installed
                          (SeaBIOS, OVMF, AAVMF, AAVMF32 or SLOF), under
                          KVM when /dev/kvm can be used, else TCG; wait up
                          to SECONDS (default 300) for a login prompt on
                          the serial console; exit 1 with the console's
                          last lines if none came
  --dry-run               check the spec and print the plan (each step, its
                          kind and its keys with defaults); change nothing;
                          exit 1 on what a build would refuse before starting
  --version               print the version and exit
  -h, --help              show this help and exit
Long options may be abbreviated to any unambiguous prefix (--out, --verb).

Environment: SOURCE_DATE_EPOCH sets (or clamps) every timestamp written;
TMPDIR is where the build's private stage directory goes.

Exit status: 0 success; 1 the spec is wrong or a step or teardown failed;
2 wrong command line; 129, 130 or 143 stopped by SIGHUP, SIGINT or SIGTERM
(after the teardowns ran). When a build fails or is stopped, an --output
file it created is removed; an --image, or an --output that existed
before, is kept and reported incomplete.

Step kinds:
`)
	kinds := steps.DefaultRegistry().Kinds()
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].Name < kinds[j].Name })
	for _, k := range kinds {
		note := ""
		if !k.Implemented {
			note = " (not implemented yet)"
		}
		fmt.Fprintf(&b, "  %-20s %s%s\n", k.Name, k.Summary, note)
	}
	b.WriteString("\nSee README.md for each step's keys and the differences from vmdb2 0.26.\n")
	return b.String()
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (seconds since 1970), the time
// every timestamp the build writes is set or clamped to; unset: zero time.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", v)
	}
	return time.Unix(n, 0).UTC(), nil
}
