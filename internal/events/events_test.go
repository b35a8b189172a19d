package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWriterLines: each event is one line of JSON, stamped with the time
// in UTC, with the fields of other types left out, and shell text as
// written (no \u003e for >).
func TestWriterLines(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.FixedZone("x", 3600))
	w := NewWriter(&buf, func() time.Time { return at })
	w.Write(Event{Type: Command, Step: 3, Argv: []string{"sh", "-c", "echo a > b && true"}})
	w.Write(Event{Type: BuildEnd, Exit: ExitStatus(0), Duration: Seconds(1500 * time.Millisecond)})
	want := `{"event":"command","time":"2026-01-02T02:04:05.678Z","step":3,"argv":["sh","-c","echo a > b && true"]}
{"event":"build-end","time":"2026-01-02T02:04:05.678Z","duration":1.5,"exit":0}
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestWriterConcurrent: events written at once from several goroutines
// (a command's stdout and stderr) never share a line.
func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, time.Now)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				w.Write(Event{Type: Output, Step: 1, Text: strings.Repeat("x", 300)})
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type != Output {
			t.Fatalf("line %q: %v", l, err)
		}
	}
}
