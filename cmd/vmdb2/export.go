package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/partition/export"
	"github.com/vmdb2-go/vmdb2/steps"
)

// addExport handles --export FILE (repeatable): the format must be
// known from the name at once, like any other command-line mistake.
func (o *options) addExport(path string) error {
	if _, err := export.ForName(path); err != nil {
		return usageError{fmt.Sprintf("argument --export: %v", err)}
	}
	o.exports = append(o.exports, path)
	return nil
}

// checkExports refuses, before anything is built, exports that could not
// be written; it keeps the checked targets in opts.
func checkExports(opts *options, disp *display) bool {
	if len(opts.exports) == 0 {
		return true
	}
	if opts.output == "" && opts.image == "" && !opts.dryRun {
		return true // run says what is missing
	}
	targets, err := export.Check(opts.exports, map[string]string{
		opts.output: "--output", opts.image: "--image", opts.rootfsTarball: "--rootfs-tarball",
		opts.logFile: "--log", opts.specFile: "the spec",
	})
	if err != nil {
		disp.errorf("%v; nothing was done", err)
		return false
	}
	opts.exportTargets = targets
	return true
}

// exportImage writes each export of a successful build, in the order
// given, through the build's runner. A failed or interrupted export
// leaves no file of its own; the image is kept either way.
func exportImage(ctx context.Context, opts *options, b *steps.Build, caught *atomic.Value, disp *display) int {
	image := opts.output
	if image == "" {
		image = opts.image
	}
	run := func(ctx context.Context, c fstool.Command) error {
		return b.CommandContext(ctx, c.Args, steps.CommandOptions{Env: c.Env, Stdout: c.Stdout})
	}
	for _, t := range opts.exportTargets {
		start := time.Now()
		disp.note("Exporting %s as %s", t.Path, t.Format.Suffix)
		err := export.Write(ctx, image, t, export.Options{Run: run, ID: b.IDs.UUID})
		if sig, ok := caught.Load().(syscall.Signal); ok {
			disp.logf("ERROR", "Interrupted by %v", sig)
			disp.errorf("stopped while exporting %s; the image %s is complete", t.Path, image)
			return 128 + int(sig)
		}
		if err != nil {
			disp.errorf("%v; the image %s is complete", err, image)
			disp.logf("ERROR", "Export failed")
			return exitFailure
		}
		disp.note("Exported %s in %.1fs", t.Path, time.Since(start).Seconds())
	}
	return exitOK
}
