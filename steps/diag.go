package steps

import (
	"fmt"
	"sort"
	"strings"
)

// Severity tells whether a diagnostic stops the build.
type Severity int

// Diagnostic severities.
const (
	Error Severity = iota
	Warning
)

// Diagnostic is one problem found in a spec, with where it is.
type Diagnostic struct {
	File     string
	Line     int // 0 when no line applies
	Severity Severity
	Msg      string
}

func (d Diagnostic) String() string {
	sev := ""
	if d.Severity == Warning {
		sev = "warning: "
	}
	if d.Line > 0 {
		return fmt.Sprintf("%s:%d: %s%s", d.File, d.Line, sev, d.Msg)
	}
	return fmt.Sprintf("%s: %s%s", d.File, sev, d.Msg)
}

// Diagnostics is a list of problems, errors and warnings mixed.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns only the errors.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Warnings returns only the warnings.
func (ds Diagnostics) Warnings() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Warning {
			out = append(out, d)
		}
	}
	return out
}

// Sorted returns the diagnostics ordered by line, errors before warnings on
// the same line.
func (ds Diagnostics) Sorted() Diagnostics {
	out := append(Diagnostics(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Severity < out[j].Severity
	})
	return out
}

// Error makes the diagnostics usable as an error: one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}
