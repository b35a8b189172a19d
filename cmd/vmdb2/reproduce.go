package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	digests, err := os.MkdirTemp("", "vmdb2-digests-")
	if err != nil {
		disp.errorf("%v", err)
		return exitFailure
	}
	defer os.RemoveAll(digests)
	first, code := buildFirst(opts, filepath.Join(digests, "first"), disp)
	if code != exitOK {
		return code
	}
	second, code := buildSecond(first, filepath.Join(digests, "second"), disp)
	if code != exitOK {
		return code
	}
	code = compareBuilds(opts.specFile, first, second, disp)
	if code == exitOK {
		os.RemoveAll(filepath.Dir(second.output))
	}
	return code
}

// buildFirst plans and builds the spec into OUTPUT, fixing the seed the
// second build reuses.
func buildFirst(opts *options, digests string, disp *display) (*options, int) {
	first := *opts
	plan, ok := loadPlan(&first, nil, disp)
	if !ok {
		return nil, exitFailure
	}
	if first.seed == "" {
		first.seed = plan.DefaultSeed()
	}
	first.cleartextDigests = digests
	fmt.Fprintf(disp.stdout, "first build: %s\n", first.output)
	return &first, build(&first, plan, disp)
}

// buildSecond builds the spec again, with the first build's seed, into
// a directory of its own beside the first image; a failed build removes
// that directory.
func buildSecond(first *options, digests string, disp *display) (*options, int) {
	checkDir, err := os.MkdirTemp(filepath.Dir(first.output), ".vmdb2-check-")
	if err != nil {
		disp.errorf("creating the directory of the second build: %v", err)
		return nil, exitFailure
	}
	second := *first
	second.exportTargets = nil // the first build's image is exported
	second.output = filepath.Join(checkDir, filepath.Base(first.output)+".check")
	second.cleartextDigests = digests
	plan, ok := loadPlan(&second, nil, disp)
	if !ok {
		return nil, exitFailure
	}
	fmt.Fprintf(disp.stdout, "second build: %s\n", second.output)
	if code := build(&second, plan, disp); code != exitOK {
		os.RemoveAll(checkDir)
		return nil, code
	}
	return &second, exitOK
}

// compareBuilds compares the two images, LUKS containers by their
// cleartexts, and says whether they are identical.
func compareBuilds(specFile string, first, second *options, disp *display) int {
	skip, why, err := encryptedAreas(first.cleartextDigests, second.cleartextDigests)
	if err != nil {
		disp.errorf("comparing the LUKS containers: %v", err)
		return exitFailure
	}
	if why != "" {
		fmt.Fprintf(disp.stdout, "NOT reproducible: %s\n", why)
		return exitFailure
	}
	diff, err := imagediff.CompareSkipping(first.output, second.output, skip)
	if err != nil {
		disp.errorf("comparing the images: %v", err)
		return exitFailure
	}
	if diff != nil {
		fmt.Fprintf(disp.stdout, "NOT reproducible: %s and %s differ; %s\n", first.output, second.output, diff)
		return exitFailure
	}
	if len(skip) > 0 {
		fmt.Fprintf(disp.stdout, "reproducible: both builds of %s gave identical images, except the expected differences: "+
			"the header, key slots and ciphertext of %d LUKS container(s), whose volume keys and salts are random; their cleartexts are identical\n",
			specFile, len(skip))
		return exitOK
	}
	fmt.Fprintf(disp.stdout, "reproducible: both builds of %s gave identical images\n", specFile)
	return exitOK
}

// encryptedAreas reads the cleartext digests the two builds recorded
// ("UUID OFFSET SIZE SHA256" per LUKS container) and returns the
// containers' byte ranges, to be compared by their cleartext, or why the
// builds differ there.
func encryptedAreas(first, second string) ([]imagediff.Range, string, error) {
	a, err := readDigests(first)
	if err != nil {
		return nil, "", err
	}
	b, err := readDigests(second)
	if err != nil {
		return nil, "", err
	}
	if len(a) != len(b) {
		return nil, fmt.Sprintf("the builds made %d and %d LUKS containers", len(a), len(b)), nil
	}
	var skip []imagediff.Range
	for i := range a {
		if a[i] != b[i] {
			return nil, fmt.Sprintf("LUKS container %d differs: its cleartext or place (%s versus %s)", i+1, a[i], b[i]), nil
		}
		var uuid, sum string
		var r imagediff.Range
		if _, err := fmt.Sscanf(a[i], "%s %d %d %s", &uuid, &r.Offset, &r.Size, &sum); err != nil {
			return nil, "", fmt.Errorf("digest record %q: %w", a[i], err)
		}
		skip = append(skip, r)
	}
	return skip, "", nil
}

func readDigests(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return nil, nil
	}
	return strings.Split(text, "\n"), nil
}
