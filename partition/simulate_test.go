package partition

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// layout applies one partitioning to d and returns the partitions or the
// first error.
func layout(d *Disk, label string, parts [][2]string) ([]Partition, error) {
	ids := LabelIDs{DiskGUID: mustGUID("01234567-89AB-CDEF-0123-456789ABCDEF"), MBRSignature: 0xdeadbeef}
	if err := d.MakeLabel(label, ids); err != nil {
		return nil, err
	}
	for _, p := range parts {
		if _, err := d.MakePart("primary", "ext4", p[0], p[1]); err != nil {
			return nil, err
		}
	}
	if err := d.SetFlag(1, "boot", true); err != nil {
		return nil, err
	}
	return d.Partitions(), nil
}

// TestSimulateMatchesFile: a simulated disk gives the partitions and the
// errors a real image file gives, and leaves no file.
func TestSimulateMatchesFile(t *testing.T) {
	cases := []struct {
		label string
		parts [][2]string
		err   string
	}{
		{"msdos", [][2]string{{"1MiB", "20MiB"}, {"20MiB", "100%"}}, ""},
		{"gpt", [][2]string{{"1MiB", "20MiB"}, {"20MiB", "-1s"}}, ""},
		{"msdos", [][2]string{{"1MiB", "50MiB"}, {"40MiB", "90MiB"}}, "overlap"},
		{"msdos", [][2]string{{"1MiB", "2GiB"}}, "outside of the device"},
		{"msdos", [][2]string{{"1", "2"}, {"2", "3"}, {"3", "4"}, {"4", "5"}, {"5", "6"}}, "all 4 primary msdos partitions"},
		{"gpt", [][2]string{{"50MiB", "10MiB"}}, "before the start"},
	}
	for _, c := range cases {
		real, img := freshDisk(t, 100<<20)
		want, werr := layout(real, c.label, c.parts)
		real.Close()
		sim, err := Simulate("sim.img", 100<<20)
		if err != nil {
			t.Fatal(err)
		}
		got, gerr := layout(sim, c.label, c.parts)
		sim.Close()
		if (werr == nil) != (gerr == nil) || (werr != nil && strings.ReplaceAll(werr.Error(), img, "sim.img") != gerr.Error()) {
			t.Errorf("%v: file gives error %v, simulation %v", c.parts, werr, gerr)
		}
		if c.err != "" && (gerr == nil || !strings.Contains(gerr.Error(), c.err)) {
			t.Errorf("%v: simulation error %v, want %q", c.parts, gerr, c.err)
		}
		if len(got) != len(want) {
			t.Fatalf("%v: %d partitions simulated, %d in the file", c.parts, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%v: partition %d: simulated %+v, file %+v", c.parts, i+1, got[i], want[i])
			}
		}
	}
	if _, err := os.Stat("sim.img"); err == nil {
		t.Error("the simulation created a file")
	}
}

// TestSimulateOnLeavesTheFile: changes to a disk simulated on an existing
// image are seen by the simulation only.
func TestSimulateOnLeavesTheFile(t *testing.T) {
	d, img := freshDisk(t, 64<<20)
	if _, err := layout(d, "gpt", [][2]string{{"1MiB", "10MiB"}}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	before, _ := os.ReadFile(img)
	sim, err := SimulateOn(img)
	if err != nil {
		t.Fatal(err)
	}
	if sim.Label() != "gpt" || len(sim.Partitions()) != 1 {
		t.Fatalf("simulation reads %q with %d partitions", sim.Label(), len(sim.Partitions()))
	}
	if _, err := sim.MakePart("two", "ext4", "10MiB", "20MiB"); err != nil {
		t.Fatal(err)
	}
	if err := sim.MakeLabel("msdos", LabelIDs{MBRSignature: 1}); err != nil {
		t.Fatal(err)
	}
	sim.Close()
	after, _ := os.ReadFile(img)
	if !bytes.Equal(before, after) {
		t.Error("the simulation changed the image file")
	}
}

// TestSimulateHuge: a simulated disk of an absurd size costs only the
// sectors its table touches.
func TestSimulateHuge(t *testing.T) {
	d, err := Simulate("huge.img", 1<<60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout(d, "gpt", [][2]string{{"1MiB", "100%"}}); err != nil {
		t.Fatal(err)
	}
	if n := len(d.f.(*overlay).chunks); n > 4 {
		t.Errorf("%d chunks of memory for a table", n)
	}
}
