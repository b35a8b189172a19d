// Package userns runs commands, or registered Go helper functions, inside new
// user, mount, PID, UTS and IPC namespaces that map 65536 ids, optionally
// confined to a stage directory with proc, /dev, devpts, /sys, /run and /tmp
// mounted only inside the namespace.
//
// It is how vmdb2 runs the steps that must act "inside the target"
// (debootstrap, apt, chroot, mke2fs over the stage, chown) without root, loop
// devices or host mounts:
//
//   - Nothing is ever mounted on the host: every mount happens in a private
//     mount namespace that disappears with its last process.
//   - No process survives a build: the namespace has its own PID 1 (a small
//     init that is this same binary), which dies with the calling thread
//     (PR_SET_PDEATHSIG) and takes every process of the namespace with it;
//     cancelling the context sends SIGTERM to the whole namespace, then
//     SIGKILL to its PID 1.
//   - Every call uses the same id mapping (see [Mapping]), so the owners of
//     the files of a stage stay consistent from one step to the next. As an
//     ordinary user, namespace id 0 is the user's own id and ids 1..65535 are
//     the first 65535 ids of the user's /etc/subuid and /etc/subgid ranges,
//     written by newuidmap and newgidmap; as root the mapping is the identity
//     on 0..65535 (the namespace still confines capabilities: no mknod, no
//     module loading, no host sysctl changes).
//   - With a Root, the process is confined by pivot_root, not chroot: the
//     host's tree is detached from the namespace, so ".." and the classic
//     chroot-escape tricks lead nowhere.
//
// The child side works by re-executing the current binary (/proc/self/exe),
// so a program using this package must call [Init] first thing in main (and
// in TestMain of test packages that use it).
package userns
