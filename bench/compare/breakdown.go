package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/events"
)

// span is a named stretch of a build.
type span struct {
	name string
	secs float64
}

// breakdown says where a build's time went, from its --progress=json
// events: each step and teardown that took a tenth of a second or more, by
// kind and in order, then the three longest commands. A command lasts until
// the next command starts or its step ends, so it includes the step's own
// work after it.
func breakdown(stream []byte) string {
	var steps, cmds []span
	var cmd string
	var cmdStart time.Time
	endCommand := func(at time.Time) {
		if cmd != "" {
			cmds = append(cmds, span{cmd, at.Sub(cmdStart).Seconds()})
		}
		cmd = ""
	}
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e events.Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		at, _ := time.Parse(events.TimeFormat, e.Time)
		switch e.Type {
		case events.Command:
			endCommand(at)
			cmd, cmdStart = commandName(e.Argv), at
		case events.StepEnd, events.TeardownEnd:
			endCommand(at)
			name := e.Kind
			if e.Type == events.TeardownEnd {
				name += " teardown"
			}
			if e.Duration != nil && *e.Duration >= 0.1 {
				steps = append(steps, span{name, *e.Duration})
			}
		}
	}
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].secs > cmds[j].secs })
	return fmt.Sprintf("steps: %s; longest commands: %s", join(steps), join(cmds[:min(3, len(cmds))]))
}

// commandName is a short name for a command: its program, or what the
// deferred kernel hooks script is (apt's initramfs, run once per kernel).
func commandName(argv []string) string {
	if len(argv) == 0 {
		return "?"
	}
	for _, a := range argv {
		if a == "vmdb2-initramfs" {
			return "kernel hooks (initramfs)"
		}
	}
	name := filepath.Base(argv[0])
	if name == "apt-get" {
		for _, a := range argv[1:] {
			if !strings.HasPrefix(a, "-") && !strings.Contains(a, "=") {
				return "apt-get " + a
			}
		}
	}
	return name
}

func join(spans []span) string {
	var parts []string
	for _, s := range spans {
		parts = append(parts, fmt.Sprintf("%s %.1f", s.name, s.secs))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
