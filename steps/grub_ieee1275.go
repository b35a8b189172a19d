package steps

import "errors"

// runGrubIEEE1275 installs GRUB for IEEE 1275 (Open Firmware) machines.
func runGrubIEEE1275(b *Build, s *Step) error {
	return errors.New("grub: ieee1275 (PowerPC) is not implemented in this version")
}
