package steps

import (
	"strings"
	"testing"
)

// lvmSpec is an image with two PV partitions (line 12: vgcreate).
const lvmSpec = `steps:
- mkimg: "{{ output }}"
  size: 200M
- mklabel: gpt
  device: "{{ output }}"
- mkpart: primary
  device: "{{ output }}"
  start: 1MiB
  end: 100MiB
  tag: pv1
- mkpart: primary
  device: "{{ output }}"
  start: 100MiB
  end: 100%
  tag: pv2
`

// TestLVMPlanRefusals: what lvm would refuse is refused before anything
// runs, at the line that says it.
func TestLVMPlanRefusals(t *testing.T) {
	vg := "- vgcreate: vg0\n  physical: [pv1, pv2]\n" // lines 16-17
	for _, c := range []struct{ steps, want string }{
		{"- vgcreate: vg0\n  physical: [pv1, nope]\n", ":17: vgcreate: physical volume: Unknown tag: nope"},
		{"- vgcreate: vg0\n  physical: [pv1, pv1]\n", ":17: vgcreate: tag pv1 is listed twice"},
		{vg + "- vgcreate: vg0\n  physical: [pv2]\n", ":18: vgcreate: A volume group called vg0 already exists"},
		{"- vgcreate: vg0\n  physical: [pv1]\n- vgcreate: vg1\n  physical: [pv1]\n", ":19: vgcreate: tag pv1 is already a PV of volume group vg0"},
		{vg + "- lvcreate: vg0\n  name: a\n  size: 100M\n- lvcreate: vg0\n  name: a\n  size: 1M\n", ":21: lvcreate: Tag already used: a"},
		{vg + "- lvcreate: vg0\n  name: a\n  size: 1G\n", ":18: lvcreate: Volume group \"vg0\" has insufficient free space (48 extents): 256 required"},
		{vg + "- lvcreate: vg0\n  name: a\n  size: fill\n- lvcreate: vg0\n  name: b\n  size: 4m\n", ":21: lvcreate: Volume group \"vg0\" has insufficient free space (0 extents)"},
		{vg + "- lvcreate: vgX\n  name: a\n  size: 1G\n", ":18: lvcreate: Volume group \"vgX\" not found"},
	} {
		ds := preflight(t, lvmSpec+c.steps, fakeHost())
		if !strings.Contains(ds.Error(), c.want) {
			t.Errorf("%s\ngot: %v\nwant: %s", c.steps, ds, c.want)
		}
	}
}

// TestLVMCheckRefusals: bad names and sizes are refused from the step
// alone.
func TestLVMCheckRefusals(t *testing.T) {
	for _, c := range []struct{ steps, want string }{
		{"- vgcreate: -vg\n  physical: [pv1]\n", ":16: vgcreate: volume group name \"-vg\" may not start with a hyphen"},
		{"- lvcreate: vg0\n  name: x_mlog\n  size: 1G\n", ":17: lvcreate: logical volume name \"x_mlog\" contains \"_mlog\""},
		{"- lvcreate: vg0\n  name: snapshot\n  size: 1G\n", ":17: lvcreate: logical volume name \"snapshot\" starts with"},
		{"- lvcreate: vg0\n  name: a\n  size: 1Q\n", ":18: lvcreate: size \"1Q\": unknown unit"},
		{"- lvcreate: vg0\n  name: a\n  size: -1G\n", ":18: lvcreate: size \"-1G\" is not a positive number"},
	} {
		_, ds := planText(t, DefaultRegistry(), lvmSpec+c.steps, Vars{Output: "out.img", Arch: "amd64"})
		if !strings.Contains(ds.Error(), c.want) {
			t.Errorf("%s\ngot: %v\nwant: %s", c.steps, ds, c.want)
		}
	}
}

// TestLVMPlanAccepts: a VG with a spanning LV and fill plans cleanly.
func TestLVMPlanAccepts(t *testing.T) {
	spec := lvmSpec + "- vgcreate: vg0\n  physical: [pv1, pv2]\n- lvcreate: vg0\n  name: root\n  size: 150M\n- lvcreate: vg0\n  name: rest\n  size: FILL\n- mkfs: ext4\n  partition: root\n- mount: root\n"
	if ds := preflight(t, spec, fakeHost()); len(ds) != 0 {
		t.Errorf("%v", ds)
	}
}
