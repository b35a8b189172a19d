package steps

import "github.com/vmdb2-go/vmdb2/stage/grub"

// installEFI writes GRUB's EFI image into the ESP's staging directory.
func (b *Build) installEFI(root, esp *Tag, rfs grub.RootFS, img []byte) error {
	return grub.InstallEFI(esp.Dir, img, b.State.Arch)
}
