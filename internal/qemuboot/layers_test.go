package qemuboot_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/stage/grub"
)

// TestMkConfigLayers runs the target's own grub-mkconfig (bookworm's GRUB
// 2.06) with the grub-probe stand-in for roots on an LV, on LUKS and on
// LVM on LUKS, each with a plain /boot partition, and for a root LV that
// holds /boot, and checks what 10_linux wrote: root=/dev/mapper/VG-LV for
// an LV root (10_linux tests that the node exists, which it does only in
// the namespace's /dev), root=UUID= for a LUKS root, and GRUB finding
// /boot's filesystem by UUID with GRUB's name of its device.
func TestMkConfigLayers(t *testing.T) {
	dir := tree(t)
	const (
		rootUUID = "3f0e8a7c-1234-4cde-9abc-0123456789ab"
		bootUUID = "9d1b2c3a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
		vgUUID   = "Abcdef-1234-5678-9abc-def0-1234-567890"
		lvUUID   = "Zyxwvu-9876-5432-10ab-cdef-9876-543210"
	)
	lv := grub.Layer{Kind: grub.LayerLVM, Name: "vg0-root", VGUUID: vgUUID, LVUUID: lvUUID}
	luks := grub.Layer{Kind: grub.LayerLUKS, Name: "crypt-root", UUID: "6a4f0c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"}
	boot := grub.Filesystem{MountPoint: "/boot", UUID: bootUUID, Type: "ext4", Table: "msdos", Partition: 1, PartUUID: "0a1b2c3d-01"}
	root := func(layers ...grub.Layer) grub.Filesystem {
		return grub.Filesystem{UUID: rootUUID, Type: "ext4", Table: "msdos", Partition: 2, PartUUID: "0a1b2c3d-02", Layers: layers}
	}
	lvmid := "lvmid/" + vgUUID + "/" + lvUUID
	cases := []struct {
		name   string
		layout grub.Layout
		want   []string // regular expressions grub.cfg must match
	}{
		{"lvm root", grub.Layout{root(lv), boot}, []string{
			`(?m)^\s+linux\s+/vmlinuz-\S+ root=/dev/mapper/vg0-root `,
			`search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 ` + bootUUID}},
		{"luks root", grub.Layout{root(luks), boot}, []string{
			`(?m)^\s+linux\s+/vmlinuz-\S+ root=UUID=` + rootUUID + ` `}},
		{"lvm on luks root", grub.Layout{root(lv, luks), boot}, []string{
			`(?m)^\s+linux\s+/vmlinuz-\S+ root=/dev/mapper/vg0-root `}},
		{"lvm root holding /boot", grub.Layout{root(lv)}, []string{
			`(?m)^\s+linux\s+/boot/vmlinuz-\S+ root=/dev/mapper/vg0-root `,
			`(?m)^\s+insmod lvm$`,
			regexp.QuoteMeta(`set root='` + lvmid + `'`),
			regexp.QuoteMeta(`search --no-floppy --fs-uuid --set=root --hint='`+lvmid+`' `) + rootUUID}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			if err := grub.MkConfig(t.Context(), grub.Target{Root: dir, Log: &log}, c.layout); err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			cfg, err := os.ReadFile(filepath.Join(dir, "boot/grub/grub.cfg"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !regexp.MustCompile(w).Match(cfg) {
					t.Errorf("grub.cfg does not match %s:\n%s", w, cfg)
				}
			}
			if bytes.Contains(cfg, []byte("cryptomount")) {
				t.Errorf("grub.cfg unlocks a container GRUB never needs:\n%s", cfg)
			}
			if _, err := os.Lstat(filepath.Join(dir, "dev/mapper")); err == nil {
				t.Error("the stand-in's /dev/mapper was left in the target")
			}
			if b, err := os.ReadFile(filepath.Join(dir, "usr/sbin/grub-probe")); err != nil || strings.Contains(string(b), "stand-in") {
				t.Errorf("the target's grub-probe was changed (%v)", err)
			}
		})
	}
}
