package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrubBadInput: each is refused with a clear message before anything is
// written to the image (the checks come before GRUB is even installed).
func TestGrubBadInput(t *testing.T) {
	checkTools(t, "mke2fs")
	head := func(label, parts string) string {
		return "steps:\n- mkimg: \"{{ output }}\"\n  size: 64M\n- mklabel: " + label + "\n  device: \"{{ output }}\"\n" + parts +
			"- mkfs: ext4\n  partition: /\n- mount: /\n"
	}
	part := func(start, end, tag, fsType string) string {
		return "- mkpart: primary\n  device: \"{{ output }}\"\n  fs-type: " + fsType + "\n  start: " + start + "\n  end: " + end + "\n  tag: " + tag + "\n"
	}
	cases := []struct{ name, spec, want string }{
		{"uefi without an ESP tag", head("gpt", part("1MiB", "100%", "/", "ext2")) + "- grub: uefi\n  tag: /\n", "uefi needs the tag of the EFI system partition"},
		{"ESP not vfat", head("gpt", part("1MiB", "10MiB", "efi", "ext2")+part("10MiB", "100%", "/", "ext2")) +
			"- mkfs: ext2\n  partition: efi\n- grub: uefi\n  tag: /\n  efi: efi\n", "the EFI system partition efi must be vfat"},
		{"BIOS on gpt without a BIOS boot partition", head("gpt", part("1MiB", "100%", "/", "ext2")) + "- grub: bios\n  tag: /\n", "BIOS boot partition"},
		{"MBR gap too small", head("msdos", part("34s", "100%", "/", "ext2")) + "- grub: bios\n  tag: /\n", "no room for GRUB's core.img"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeWorkDir(t, c.spec)
			// A failed build removes an output it created: let this one
			// exist before, so that the failed build keeps it to look at.
			if err := os.WriteFile(filepath.Join(dir, "out.img"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", r.code, c.want, r.stderr)
			}
			// Nothing was written by the grub step: the boot code area is
			// still zero.
			if data, err := os.ReadFile(filepath.Join(dir, "out.img")); err == nil && len(data) >= 440 {
				for _, b := range data[:440] {
					if b != 0 {
						t.Fatalf("boot code was written")
					}
				}
			}
			noStageLeft(t, filepath.Join(dir, "tmp"))
		})
	}
}
