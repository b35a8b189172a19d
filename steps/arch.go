package steps

import "github.com/vmdb2-go/vmdb2/internal/debarch"

// HostArch is the Debian name of the architecture this program runs on
// (see debarch.Host); "" on a host Debian has no name for, where every
// spec must give its arch.
func HostArch() string {
	a, _ := debarch.Host()
	return a.Name
}
