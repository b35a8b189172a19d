package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/partition"
)

// partitionedImage writes a 64 MiB image file with an msdos table of two
// partitions, as an earlier build leaves it: the first has an ext
// superblock's magic, the second a FAT16 boot sector's signatures (all the
// plan reads of them).
func partitionedImage(t *testing.T) string {
	t.Helper()
	img := bareImage(t)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt([]byte{0x53, 0xEF}, 1<<20+1024+56)
	f.WriteAt([]byte("FAT16   "), 40<<20+0x36)
	f.WriteAt([]byte{0x55, 0xAA}, 40<<20+510)
	return img
}

// bareImage is partitionedImage without filesystems.
func bareImage(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "old.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.MakeLabel("msdos", simIDs); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"1MiB", "40MiB"}, {"40MiB", "100%"}} {
		if _, err := d.MakePart("primary", "", r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// reuseSpec names the two partitions of an existing image and uses them
// without mkfs, as vmdb2 0.28's kpartx tags allow (line 4: mount).
const reuseSpec = `steps:
- kpartx: "{{ image }}"
  tags: [root, efi]
- mount: root
- mount: efi
  mount-on: root
  dirname: /boot/efi
- create-file: /etc/new
  contents: x
- fstab: root
`

// TestKpartxTagsPlan: the plan knows the tags `kpartx: tags` makes of the
// --image file's partitions, so later steps that use them plan cleanly
// without mkfs; vmdb2's kpartx without tags still plans.
func TestKpartxTagsPlan(t *testing.T) {
	img := partitionedImage(t)
	h := fakeHost()
	h.Output, h.Image = "", img
	if ds := preflight(t, reuseSpec, h); len(ds) != 0 {
		t.Errorf("refused: %v", ds)
	}
	// The ESP's type is known to the plan: grub uefi accepts it.
	grubSpec := reuseSpec + "- grub: uefi\n  tag: root\n  efi: efi\n"
	if ds := preflight(t, grubSpec, h); len(ds) != 0 {
		t.Errorf("grub on reused tags refused: %v", ds)
	}
	// A tag of the model has the partition's place.
	p, ds := planText(t, DefaultRegistry(), reuseSpec, Vars{Image: img, Arch: "amd64"})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	sm := newSim(p, h)
	for _, s := range p.Steps[:1] {
		simulations[s.Kind.Name](sm, s)
	}
	efi, err := sm.tags.Get("efi")
	if err != nil || efi.PartNumber != 2 || efi.Offset != 40<<20 || efi.Size != 24<<20 || !efi.Reused {
		t.Errorf("tag efi: %+v, %v", efi, err)
	}
	// Without tags: the old no-op check.
	if ds := preflight(t, rootedSpec+"- kpartx: \"{{ output }}\"\n- fstab: /\n", fakeHost()); len(ds) != 0 {
		t.Errorf("kpartx without tags refused: %v", ds)
	}
	// --dry-run without an image: the tags are made, of unknown place.
	if ds := preflight(t, reuseSpec, Host{Namespace: h.Namespace, ToolFound: h.ToolFound, Stat: h.Stat, ProbeImage: h.ProbeImage}); ds.HasErrors() {
		t.Errorf("dry run refused: %v", ds)
	}
}

// TestKpartxTagsRefusals: too many tags, an image without a partition
// table, a file that is not the --image, a tag used twice: refused at
// plan time at the line that says it.
func TestKpartxTagsRefusals(t *testing.T) {
	img := partitionedImage(t)
	blank := filepath.Join(t.TempDir(), "blank.img")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, spec, image, want string
	}{
		{"too many tags", strings.Replace(reuseSpec, "[root, efi]", "[root, efi, srv]", 1), img,
			"t.vmdb:3: kpartx: 3 tags for the 2 partitions of " + img},
		{"no table", reuseSpec, blank, "t.vmdb:3: kpartx: " + blank + " has no partition table"},
		{"not the --image", strings.Replace(reuseSpec, "{{ image }}", "other.img", 1), img,
			"t.vmdb:2: kpartx: kpartx with tags names the partitions of an existing image: other.img must be the image given with --image"},
		{"tag used twice", strings.Replace(reuseSpec, "[root, efi]", "[root, root]", 1), img, "t.vmdb:3: kpartx: Tag already used: root"},
		{"no filesystem, no mkfs", strings.Replace(reuseSpec, "- mount: efi\n  mount-on: root\n  dirname: /boot/efi\n", "", 1), bareImage(t),
			"t.vmdb:4: mount: tag root has no mkfs step, so its filesystem is read from "},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := fakeHost()
			h.Output, h.Image = "", c.image
			ds := preflight(t, c.spec, h)
			if len(ds) != 1 || !strings.Contains(ds.Error(), c.want) {
				t.Errorf("got: %v\nwant: %s", ds, c.want)
			}
		})
	}
}

// TestMkfsTargetOldPlan: target_old must be a boolean; on a type other
// than ext2/3/4 it is a warning (it has nothing to turn off there).
func TestMkfsTargetOldPlan(t *testing.T) {
	_, ds := planText(t, DefaultRegistry(), rootedSpec+"- mkfs: ext4\n  partition: x\n  target_old: maybe\n", Vars{Output: "out.img", Arch: "amd64"})
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "t.vmdb:16: mkfs: key `target_old` must be a boolean") || !strings.Contains(ds.Error(), "target_old") {
		t.Errorf("non-boolean target_old: %v", ds)
	}
	_, ds = planText(t, DefaultRegistry(), rootedSpec+"- mkfs: vfat\n  partition: x\n  target_old: true\n", Vars{Output: "out.img", Arch: "amd64"})
	if ds.HasErrors() || !strings.Contains(ds.Error(), "t.vmdb:16: warning: mkfs: target_old turns off ext2/3/4 features") {
		t.Errorf("target_old on vfat: %v", ds)
	}
	if _, ds = planText(t, DefaultRegistry(), rootedSpec+"- mkfs: ext4\n  partition: x\n  target_old: yes\n", Vars{Output: "out.img", Arch: "amd64"}); len(ds) != 0 {
		t.Errorf("target_old: yes refused: %v", ds)
	}
}
