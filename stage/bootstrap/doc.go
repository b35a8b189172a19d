// Package bootstrap installs a Debian base system into a stage directory,
// running as root of the build's user namespace (package stage/userns), for
// vmdb2's `debootstrap` and `qemu-debootstrap` steps, and runs apt inside
// such a target for the `apt` step, with a package cache shared between
// builds.
//
// # Engine
//
// [Bootstrap] runs the host's debootstrap (the default, [EngineDebootstrap])
// or mmdebstrap --mode=root ([EngineMmdebstrap]) inside a namespace made by
// userns.Run without a Root: the engine sees the host's files as the
// namespace's root sees them, is root there, and chroots into the target
// itself. The namespace's mapping is the one every step of the build uses
// (ns 0 is the calling user), so the files it creates have the same owners
// as those made by later steps. mmdebstrap's own --mode=unshare is not
// used: it maps ns 0 to the first subordinate id instead.
//
// Measured on bookworm/amd64 with stage/bootstrap/internal/measure (which
// prints these figures: "rx" is counted by an HTTP proxy of its own, so
// other traffic does not count; "cold" starts with an empty package cache,
// "warm" with the one the cold run filled). The first table was taken when
// the namespace's commands still flushed to disk and the stage was on disk
// (2 vCPUs shared with other builds, noisy up to +50%):
//
//	engine       variant  user      cold           warm
//	debootstrap  minbase  root      52.8 s, 41 MB   53.8 s, 9.2 MB
//	debootstrap  minbase  ordinary  83.4 s, 41 MB  102.1 s, 8.9 MB (loaded host)
//	mmdebstrap   minbase  root      70.7 s, 48 MB   63.4 s, 8.9 MB
//	mmdebstrap   minbase  ordinary  83.7 s, 48 MB  101.4 s, 8.9 MB (loaded host)
//
// With flushes turned off in the namespace (package userns) the picture
// changed; the default variant ("-", required + important), as root, idle
// host:
//
//	debootstrap  -        root      64.3 s, 59 MB   69.3 s, 8.9 MB
//	mmdebstrap   -        root      33.0 s, 67 MB   34.1 s, 8.9 MB
//
// and the whole `debootstrap` step of a build (stage in /dev/shm, with
// another build running): 44 s through mmdebstrap, 138 s through
// debootstrap. mmdebstrap resolves with apt, downloads in parallel and
// unpacks everything in one dpkg run; debootstrap resolves in shell and
// perl, checks each .deb in a shell loop and installs in several rounds.
//
// Neither engine is the default: the steps choose. vmdb2's `debootstrap`
// step uses mmdebstrap, told to give debootstrap's result: the same
// variant (required + important), a merged /usr with the usr-is-merged
// package (mmdebstrap's maybe-merged-usr hook; without it apt picks
// usrmerge and perl), apt's package lists kept (vmdb2 runs no apt-get update
// after debootstrap), no apt.conf.d/99mmdebstrap and no auto-installed marks
// left behind, /etc/machine-id read-only. Compared file by file with
// debootstrap's tree, what differs is only what does not matter: the
// .deb files debootstrap leaves in /var/cache/apt/archives, its leftovers
// in /run (a tmpfs at boot), apt's binary caches, the order of two lines in
// /etc/group, and the Priority fields in dpkg's status file. vmdb2's
// `qemu-debootstrap` step keeps debootstrap, which vmdb2 runs through
// debootstrap's qemu wrapper and which the ppc64el example was booted with.
//
// # Device nodes
//
// mknod is refused in a user namespace, even to the namespace's root. While
// debootstrap runs, the target's /dev holds empty placeholder files with the
// host's null, zero, full, random, urandom and tty bind-mounted over them
// (inside the namespace only), and placeholders for console and ptmx, so
// that maintainer scripts reach real devices and debootstrap does not try
// mknod (it is also told container=lxc, which skips its mknod test). After
// the engine has finished, the placeholders are removed and /dev is
// completed as debootstrap leaves it as real root: the links fd, stdin,
// stdout and stderr, the directories pts and shm, and the character devices
// console (5,1), full (1,7), null (1,3), ptmx (5,2), random (1,8),
// tty (5,0), urandom (1,9) and zero (1,5), all mode 0666 and owned by
// root (see [StandardDevices]). When the calling process is real root (not
// in a namespace) it creates those nodes with mknod, so the stage is what
// vmdb2 makes; otherwise (an ordinary user, or root in a container without
// CAP_MKNOD) it records them in Options.DeviceManifest, in the format of
// package stage/rootfs (rootfs.Manifest; entries for other paths in an
// existing manifest are kept), for the image writer to add. The manifest is
// required then, and Bootstrap says so before starting.
//
// # apt inside the target
//
// [AptInstall] runs apt-get confined to the target with the virtual
// filesystems (userns.Cmd.Root and Virtual): `apt-get update` (unless not
// needed: see the shared package cache below), then
// `apt-get -y --no-show-progress [--no-install-recommends] install PKGS`,
// then `apt-get clean` if asked, with DEBIAN_FRONTEND=noninteractive and
// these options on the command line (so nothing is left in the image):
// APT::Sandbox::User=root (the downloads then belong to the namespace's
// root, that is the calling user, who can manage the shared cache on the
// host; _apt would be a subordinate id), Dpkg::Use-Pty=0 and
// Dpkg::Options::=--force-unsafe-io (dpkg does not fsync: the image is
// written in one go at the end anyway). vmdb2 0.26 installs eatmydata into
// the image for the same purpose; this package does not, so the image does
// not gain a package the spec did not ask for.
//
// debootstrap runs dpkg itself, so during Bootstrap a dpkg configuration
// file etc/dpkg/dpkg.cfg.d/vmdb2-unsafe-io with force-unsafe-io is in the
// target; it is removed afterwards.
//
// # Shared package cache
//
// Downloaded .deb files go to one directory shared by every build of the
// user: Options.CacheDir and AptOptions.CacheDir, by default
// /var/cache/vmdb2/apt-archives for root and
// $XDG_CACHE_HOME/vmdb2/apt-archives otherwise (see [DefaultCacheDir]).
// debootstrap gets it as --cache-dir; mmdebstrap and apt get it bind-mounted
// over the target's /var/cache/apt/archives inside the namespace (mmdebstrap
// with --skip=essential/unlink and a hook that unbinds it before its clean-up).
// The debs never stay in the target. AptInstall downloads with
// --download-only while holding an flock on CacheDir/.vmdb2-lock, then
// installs from the cache (read-only bind, apt's own locks off) without
// holding it, so concurrent builds neither corrupt nor block on each other's
// installs. Bootstrap holds the same lock for the whole engine run:
// mmdebstrap's apt takes apt's own lock in the cache, on which a second apt
// fails at once ("Could not get lock ... It is held by process 0"), and
// debootstrap downloads into the cache under fixed names. A concurrent
// build waits (Progress says so) and then finds the packages there, so
// any number of builds of one user can run at once and download each
// package once. A package already in the cache is not downloaded again; the
// package lists (apt-get update, debootstrap's Packages file) are, once per
// build and target: given the build's [UpdateMemo] (AptOptions.Updates), an
// apt run skips its `apt-get update` when the target's sources, apt
// configuration and keyrings (etc/apt, usr/share/keyrings), dpkg's
// architectures and the lists are as the build's last update there left
// them; anything changed there (a source or key added, the lists removed or
// rewritten) updates again. mmdebstrap's own update does not count: it ran
// with Acquire::Languages "none", so the first apt run still fetches the
// translations.
// `apt-get clean` runs without the bind, so it empties only the target's
// cache.
//
// # Temporary files
//
// The engine's TMPDIR is Options.TempDir, a directory of the build's
// stage, so that what a killed engine leaves there (mmdebstrap's
// mmdebstrap.* directories, which it removes only when it exits) goes
// with the stage instead of staying in /tmp.
//
// # Paths in the target
//
// What this package does to the target from the host (the /dev
// placeholders and nodes, the unsafe-io file, the keyring, the empty
// resolv.conf apt gets, mmdebstrap's finish, the apt-get check) goes
// through package stage's Root: every path is resolved inside the target,
// so a link there (absolute or relative) never leads to a host file; a
// final link is never written through, and no FIFO or device node is
// opened. A /dev that is not a directory of the target is refused, as the
// namespace mounts host nodes onto paths below it.
//
// # Other vmdb2 behaviour
//
//   - Arch defaults to the host's; a foreign architecture (qemu-debootstrap)
//     needs the host to run its programs through binfmt_misc and
//     qemu-user-static: [CheckArch] checks that (with arch-test when
//     installed) and Bootstrap fails before doing anything if it cannot,
//     giving the commands that install qemu-user-static and register its
//     handler for that architecture alone (binfmt-support would register
//     every architecture). On bookworm
//     qemu-debootstrap is only a wrapper for debootstrap, so both steps call
//     Bootstrap; the qemu-debootstrap step then calls [AptUpdate].
//   - install_keyring: vmdb2 0.26 ran `apt-key add`, which bookworm no
//     longer has; the keyring file is copied instead to
//     etc/apt/trusted.gpg.d/NAME.asc (ASCII-armoured) or NAME.gpg, and gnupg
//     is not installed.
//   - require_empty_target is the caller's: [CheckEmpty] gives vmdb2's
//     message.
//   - Like debootstrap, the engine copies the host's /etc/resolv.conf into
//     the target. While AptInstall runs, the namespace binds a private copy
//     of the host's over it, read-only: a package that replaces
//     /etc/resolv.conf (resolvconf, systemd-resolved's postinst) fails with
//     EBUSY there.
//   - debootstrap warns that it cannot mount sysfs on the target's /sys (a
//     fresh sysfs needs a network namespace); nothing in the base system
//     needs it.
//
// Everything runs in namespaces of package stage/userns, so a program using
// this package must call userns.Init first thing in main (and in TestMain).
package bootstrap
