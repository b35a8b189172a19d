package steps

import "runtime"

// HostArch is the Debian name of the architecture this program runs on,
// which vmdb2 gets from `dpkg --print-architecture`; mapping Go's name
// avoids needing dpkg on the host.
func HostArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	case "mips64le":
		return "mips64el"
	case "mipsle":
		return "mipsel"
	case "loong64":
		return "loong64"
	}
	return runtime.GOARCH // amd64, arm64, riscv64, s390x, ppc64 share names
}
