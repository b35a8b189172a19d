package steps

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/stage/grub"
)

// layoutTags makes an msdos image with two partitions and the tags of a
// root filesystem (tag "root", partition 2 or an LV on it) and a /boot
// nested in it (tag "boot", partition 1), as the mount steps leave them.
func layoutTags(t *testing.T, rootLayers func(root, part2 *Tag)) (*Build, *Tag) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := partition.CreateImage(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.MakeLabel("msdos", partition.LabelIDs{MBRSignature: 0x0a1b2c3d}); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"1MiB", "17MiB"}, {"17MiB", "100%"}} {
		if _, err := d.MakePart("primary", "", r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	b := &Build{State: &State{}}
	add := func(name string) *Tag {
		tag, err := b.State.Tags.Add(name)
		if err != nil {
			t.Fatal(err)
		}
		return tag
	}
	part2 := add("part2")
	part2.Image, part2.PartNumber = img, 2
	root := part2
	if rootLayers != nil {
		root = add("root")
		rootLayers(root, part2)
	} else {
		part2.Name = "root"
	}
	root.FSType, root.UUIDText, root.Mounted, root.MountPoint, root.stageDir = "ext4", "3f0e8a7c-1234-4cde-9abc-0123456789ab", true, "/", t.TempDir()
	boot := add("boot")
	boot.Image, boot.PartNumber, boot.FSType, boot.UUIDText, boot.Label = img, 1, "ext2", "9d1b2c3a-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "BOOT"
	boot.Mounted, boot.MountPoint, boot.MountOn, boot.inParent = true, "/boot", root.Name, "/boot"
	return b, root
}

// The grub step describes each filesystem of root's tree with its mount
// point, partition and layers.
func TestGrubLayout(t *testing.T) {
	b, root := layoutTags(t, nil)
	l, err := b.grubLayout(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[0].MountPoint != "/" || l[0].Partition != 2 || l[0].PartUUID != "0a1b2c3d-02" ||
		l[1].MountPoint != "/boot" || l[1].Partition != 1 || l[1].Label != "BOOT" || l[1].Table != "msdos" {
		t.Fatalf("layout %+v", l)
	}
	c, err := grub.BootConfig(l)
	if err != nil || c.Prefix != "(hd0,msdos1)/grub" {
		t.Errorf("BootConfig = %+v, %v; want prefix (hd0,msdos1)/grub", c, err)
	}

	b, root = layoutTags(t, func(root, part2 *Tag) {
		crypt := &Tag{Name: "cleartext", LUKS: &LUKSLayer{Name: "cleartext", UUID: "6a4f0c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b", Under: part2}}
		root.LV = &LVLayer{VG: "vg-0", LV: "root", VGUUID: "Abcdef-1234-5678-9abc-def0-1234-567890", LVUUID: "Zyxwvu-9876-5432-10ab-cdef-9876-543210", PVs: []*Tag{crypt}}
	})
	l, err = b.grubLayout(root)
	if err != nil {
		t.Fatal(err)
	}
	ls := l[0].Layers
	if len(ls) != 2 || ls[0].Kind != grub.LayerLVM || ls[0].Name != "vg--0-root" || ls[1].Kind != grub.LayerLUKS || ls[1].Name != "cleartext" || l[0].Partition != 2 {
		t.Fatalf("LVM on LUKS root: %+v", l[0])
	}
	if err := grubBootReadable(&b.State.Tags, root); err != nil {
		t.Errorf("plain /boot, encrypted root: %v", err)
	}
	// Without its own /boot, /boot/grub is on the encrypted root: refused
	// at plan time and when the step runs.
	boot, _ := b.State.Tags.Get("boot")
	boot.Mounted = false
	if err := grubBootReadable(&b.State.Tags, root); err == nil || !strings.Contains(err.Error(), "plain partition") {
		t.Errorf("/boot on LUKS: %v", err)
	}
	l, _ = b.grubLayout(root)
	if _, err := grub.BootConfig(l); err == nil {
		t.Error("BootConfig accepted /boot/grub on LUKS")
	}
}
