package userns

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Everything a command writes in the namespace lands in the stage, a
// scratch tree that is read again to build the image and then removed; the
// image file itself is synced once by the build when it is a device. Flushes
// to disk on the way are pure cost: dpkg syncs every file it unpacks and
// mke2fs syncs the whole image (4–5 s of the 7 s mke2fs -d takes for a
// 700 MB tree on this project's CI disk). So commands run with a seccomp
// filter under which fsync, fdatasync, syncfs, sync and sync_file_range
// return success at once: what eatmydata does, without a library in the
// target or LD_PRELOAD (which static and setuid programs ignore).

// syncCalls are the flushing system calls per audit architecture: the
// native one and, on 64-bit hosts, the 32-bit one whose programs the
// kernel also runs (i386 on amd64, armhf on arm64). Programs of other
// architectures run through qemu-user, whose system calls are native.
var syncCalls = map[string][]archCalls{
	"amd64": {
		{arch: 0xc000003e /* AUDIT_ARCH_X86_64 */, nrs: []uint32{74, 75, 162, 277, 306}},
		{arch: 0x40000003 /* AUDIT_ARCH_I386 */, nrs: []uint32{118, 148, 36, 314, 344}},
	},
	"arm64": {
		{arch: 0xc00000b7 /* AUDIT_ARCH_AARCH64 */, nrs: []uint32{82, 83, 81, 84, 267}},
		{arch: 0x40000028 /* AUDIT_ARCH_ARM */, nrs: []uint32{118, 148, 36, 341, 373}},
	},
}

type archCalls struct {
	arch uint32
	nrs  []uint32
}

// Classic BPF and seccomp constants (linux/filter.h, linux/seccomp.h).
const (
	bpfLdWAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfRetK   = unix.BPF_RET | unix.BPF_K

	seccompRetAllow = 0x7fff0000
	seccompRetErrno = 0x00050000 // | errno; errno 0 means "succeeded"

	offsetNr   = 0 // struct seccomp_data: int nr; __u32 arch; ...
	offsetArch = 4
)

// noSyncFilter builds the filter program for one host architecture: for
// each known audit architecture, its flushing calls return 0; anything
// else is allowed.
func noSyncFilter(tables []archCalls) []unix.SockFilter {
	var prog []unix.SockFilter
	for _, t := range tables {
		// ld arch; jeq t.arch ? next : skip this block
		// ld nr; jeq nr_i ? ret 0 : next … ; ret allow
		block := 1 + len(t.nrs) + 2 // ld nr, the jeqs, ret allow, ret 0
		prog = append(prog,
			unix.SockFilter{Code: bpfLdWAbs, K: offsetArch},
			unix.SockFilter{Code: bpfJeqK, K: t.arch, Jt: 0, Jf: uint8(block)},
			unix.SockFilter{Code: bpfLdWAbs, K: offsetNr},
		)
		for i, nr := range t.nrs {
			// The "ret 0" is after the remaining jeqs and "ret allow".
			prog = append(prog, unix.SockFilter{Code: bpfJeqK, K: nr, Jt: uint8(len(t.nrs) - i), Jf: 0})
		}
		prog = append(prog,
			unix.SockFilter{Code: bpfRetK, K: seccompRetAllow},
			unix.SockFilter{Code: bpfRetK, K: seccompRetErrno | 0},
		)
	}
	return append(prog, unix.SockFilter{Code: bpfRetK, K: seccompRetAllow})
}

// installNoSync applies the filter to every thread of this process, so
// that the commands it starts inherit it. It needs CAP_SYS_ADMIN in the
// namespace (which init has) rather than no_new_privs, which would stop
// setuid programs such as su inside chroot steps. A host architecture
// without a table, or a kernel that refuses, only means slower builds.
func installNoSync() error {
	tables, ok := syncCalls[runtime.GOARCH]
	if !ok {
		return nil
	}
	prog := noSyncFilter(tables)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return errno
	}
	return nil
}
