package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vmdb2-go/vmdb2/partition/imagediff"
)

// checkReproducible builds the spec twice, the second time into
// DIR/.vmdb2-check-XXXX/NAME.check beside OUTPUT (DIR/NAME), so that an
// image that depends on the output's directory or name is caught, with the
// same seed and SOURCE_DATE_EPOCH (now, if it is not set), and reports
// where the two images first differ. Exit 0 when they are identical (the
// second image and its directory are then removed), 1 otherwise.
func checkReproducible(opts *options, disp *display) int {
	if opts.output == "" || opts.specFile == "-" {
		fmt.Fprintln(disp.stderr, "vmdb2: --check-reproducible needs --output and a spec file (not standard input)")
		return exitUsage
	}
	if os.Getenv("SOURCE_DATE_EPOCH") == "" {
		now := strconv.FormatInt(time.Now().Unix(), 10)
		os.Setenv("SOURCE_DATE_EPOCH", now)
		fmt.Fprintf(disp.stdout, "SOURCE_DATE_EPOCH=%s for both builds\n", now)
	}
	first := *opts
	plan, ok := loadPlan(&first, nil, disp)
	if !ok {
		return exitFailure
	}
	if first.seed == "" {
		first.seed = plan.DefaultSeed()
	}
	fmt.Fprintf(disp.stdout, "first build: %s\n", first.output)
	if code := build(&first, plan, disp); code != exitOK {
		return code
	}
	checkDir, err := os.MkdirTemp(filepath.Dir(first.output), ".vmdb2-check-")
	if err != nil {
		disp.errorf("creating the directory of the second build: %v", err)
		return exitFailure
	}
	second := first
	second.output = filepath.Join(checkDir, filepath.Base(first.output)+".check")
	plan2, ok := loadPlan(&second, nil, disp)
	if !ok {
		return exitFailure
	}
	fmt.Fprintf(disp.stdout, "second build: %s\n", second.output)
	if code := build(&second, plan2, disp); code != exitOK {
		os.RemoveAll(checkDir)
		return code
	}
	diff, err := imagediff.Compare(first.output, second.output)
	if err != nil {
		disp.errorf("comparing the images: %v", err)
		return exitFailure
	}
	if diff == nil {
		os.RemoveAll(checkDir)
		fmt.Fprintf(disp.stdout, "reproducible: both builds of %s gave identical images\n", opts.specFile)
		return exitOK
	}
	fmt.Fprintf(disp.stdout, "NOT reproducible: %s and %s differ; %s\n", first.output, second.output, diff)
	return exitFailure
}
