package main

import "fmt"

// The --progress modes.
const (
	// progressAuto is vmdb2's display: -v's progress on stdout, else
	// nothing there.
	progressAuto = "auto"
	// progressJSON writes the build's events as JSON lines on stdout.
	progressJSON = "json"
)

func (o *options) setProgress(mode string) error {
	switch mode {
	case progressAuto, progressJSON:
		o.progress = mode
		return nil
	}
	return usageError{fmt.Sprintf("argument --progress: invalid choice: %q (choose from auto, json)", mode)}
}

// checkProgress refuses what cannot give a stream of JSON events alone on
// stdout: --dry-run prints the plan there, --check-reproducible its
// verdict between two builds.
func (o *options) checkProgress() error {
	if o.progress != progressJSON {
		return nil
	}
	for _, c := range []struct {
		set  bool
		name string
	}{{o.dryRun, "--dry-run"}, {o.checkRepro, "--check-reproducible"}} {
		if c.set {
			return usageError{fmt.Sprintf("--progress=json cannot be combined with %s, which prints its own report on stdout", c.name)}
		}
	}
	return nil
}
