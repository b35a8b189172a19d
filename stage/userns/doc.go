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
//   - With a Root, the namespace pivots into a copy of Root's parent
//     directory, so the host's tree is detached from it, and then chroots
//     into Root: "/" is a plain directory, not a mount point, and
//     /proc/self/mountinfo has no line for it, so findmnt does not name the
//     build host's device as the source of "/" (target programs write
//     that into images). The classic chroot-escape tricks lead to Root's
//     parent directory and no further; when that directory is not the
//     caller's own (owned by it, writable by nobody else), the namespace
//     pivots into Root itself and "/" is a mount. Run opens Root once;
//     the namespace's init enters it only if its path still leads to that
//     directory, and Run restores the stage through that descriptor.
//   - Every path in a Root is the image's. Init resolves each path it
//     creates, mounts on, writes or reads there from the stage's root
//     (openat2 with RESOLVE_IN_ROOT and no /proc magic links) and acts on
//     the descriptor; Run's restoring afterwards does the same on the
//     host. So a link /tmp -> /home/x in the image means the image's
//     /home/x, as in a chroot, and no link leads to a host file.
//   - What init creates, writes or mounts on lies on the stage's own files
//     or on a tmpfs it mounted there, never on /proc, /sys, a device node
//     or a bind's host directory. A mount point (Virtual's or a Bind's
//     target) that is a dangling link, a link loop, a link through /proc's
//     magic links, of the wrong type (not a directory; not a regular file
//     for a file bind), "/" itself, or that leads onto such a mount, makes
//     Run fail before the command starts, with a message naming the path
//     in the image. policy-rc.d and the lent resolv.conf are not needed
//     to run a command: when /usr/sbin or /etc/resolv.conf does not lead to
//     the image's own directory or regular file, they are left out.
//   - Neither the command nor the namespace's init (whose descriptors a
//     command can reopen through /proc/1/fd) holds a descriptor of a host
//     file: init closes those it inherited without close-on-exec from
//     whatever started the build, Go's runtime in init does not keep the
//     cgroup files it reads at start, and the host mounts init prepares
//     are closed before the command starts.
//   - With a Tree, its MountPoints (the build's mounted filesystems) are
//     bound onto themselves in the namespace, so the target's programs
//     see them as mount points (but for a Root's "/"); a bind shows the
//     stage's filesystem as its source and the stage's host path as its
//     root in mountinfo; and the mounts a KeepMounts command left
//     in the Tree are kept in a [Carry] as detached mount copies (no mount
//     namespace holds them: the host never does) and attached in the next
//     commands given that Carry, each at a path resolved beneath the Tree
//     with no symbolic link on the way. A proc is kept as a place only and
//     made anew in each namespace; a confined command with Virtual keeps
//     its own /proc, /sys, /dev, /run and /tmp.
//
// Limits worth knowing:
//
//   - mknod fails with EPERM inside, as root too (a user namespace is
//     always used): /dev holds bind mounts of the host's nodes, and device
//     nodes a stage needs must come from a tar stream or debugfs later.
//   - /sys is a read-only bind of the host's (a fresh sysfs would need a
//     network namespace, and apt needs the host's network).
//   - /etc/resolv.conf is not a mount: the host's content is written into
//     the stage's file for the command and the file's own content and
//     times are put back afterwards (unless the command wrote or replaced
//     it), so packages such as systemd-resolved can replace it.
//   - For an ordinary user, host files owned by ids outside the mapping
//     (root's, such as the /dev nodes) appear as 65534 and cannot be chowned.
//   - If the calling process itself is killed with SIGKILL, the namespace
//     still dies with it, but the stage is not restored (the policy-rc.d and
//     any created mount points stay).
//   - The mapping is not mmdebstrap --mode=unshare's (which maps namespace 0
//     to the first subordinate id): do not mix stages made by both.
//
// The child side works by re-executing the current binary (/proc/self/exe),
// so a program using this package must call [Init] first thing in main (and
// in TestMain of test packages that use it).
package userns
