package steps

import (
	"path"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/grub"
)

// installEFI writes GRUB's EFI image into the ESP's staging directory.
// When the target has Debian's signed boot loaders (grub-efi-<arch>-signed,
// and shim-signed for shim), the ESP gets those instead, laid out as
// `grub-install --uefi-secure-boot --force-extra-removable --no-nvram`
// does, so that the image boots with Secure Boot enforced; img (still
// built, as grub-install also does, with its modules in /boot/grub) is
// then not used.
func (b *Build) installEFI(root, esp *Tag, layout grub.Layout, img []byte) error {
	rootDir, err := b.tagDir(root)
	if err != nil {
		return err
	}
	espDir, err := b.tagDir(esp)
	if err != nil {
		return err
	}
	signed, err := grub.FindSecureBoot(rootDir, b.State.Arch)
	if err != nil {
		return err
	}
	if signed == nil {
		return grub.InstallEFI(espDir, img, b.State.Arch)
	}
	files, err := grub.SecureBootLayout(signed, layout)
	if err != nil {
		return err
	}
	if signed.Shim != nil {
		b.Progress("Secure Boot: installing shim and Debian's signed GRUB")
	} else {
		b.Progress("Secure Boot: installing Debian's signed GRUB (no signed shim in the target)")
	}
	made := map[string]bool{}
	for _, f := range files {
		if dir := "/" + path.Dir(f.Path); !made[dir] {
			if err := b.FileOp(stage.FileOp{Op: "create-dir", Root: espDir, Path: dir, Perm: 0o755}); err != nil {
				return err
			}
			made[dir] = true
		}
		if err := b.FileOp(stage.FileOp{Op: "create-file", Root: espDir, Path: "/" + f.Path, Contents: f.Data, Perm: 0o644}); err != nil {
			return err
		}
	}
	return nil
}
