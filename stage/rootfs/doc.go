// Package rootfs packs a stage's root filesystem tree into a tarball and
// unpacks one into a stage: the rootfs cache behind vmdb2's `cache-rootfs`
// and `unpack-rootfs` steps and its `--rootfs-tarball FILE` option.
//
// # Compatibility with vmdb2
//
// vmdb2 0.26 runs `tar --one-file-system -C ROOT -caf TARBALL . ./boot/efi`
// to cache and `tar -C ROOT -xf TARBALL --numeric-owner` to unpack. [Unpack]
// reads those caches (GNU tar format, members named "./…", any compression
// GNU tar's -a picks) as well as the ones [Pack] writes. Two checks vmdb2
// makes are left to the caller (the step code):
//
//   - `cache-rootfs` writes the tarball only if the file does not exist yet
//     ([Pack] always writes it, atomically: see below);
//   - `unpack-rootfs` does nothing at all if the file does not exist
//     ([Unpack] returns an error wrapping fs.ErrNotExist).
//
// vmdb2's `unpack-rootfs` also copies the host's /etc/resolv.conf into
// ROOT/etc/resolv.conf after unpacking. Unpack deliberately does not: that
// would put the build host's DNS configuration into the image. The namespace
// runner (stage/userns, Cmd.Virtual) binds a private copy of the host's
// resolv.conf over the stage's while commands run, which is what apt needs.
//
// # Formats
//
// When writing, the compression is chosen from the tarball's name like GNU
// tar's -a: ".tar.gz"/".tgz" gzip, ".tar.xz"/".txz" xz, ".tar.zst"/
// ".tar.zstd"/".tzst" zstd, ".tar.bz2"/".tbz2" bzip2 (host bzip2 program),
// anything else an uncompressed tar. When reading, it is chosen from the
// file's first bytes, whatever its name. See [FormatFor]. xz, zstd and
// bzip2 are decoded by the host's programs when they are installed (on
// another core), by Go's decoders otherwise; xz and bzip2 are also encoded
// by the programs, zstd always by Go's encoder. Unpack reads the
// compressed stream to its end, so a damaged tarball fails on its
// checksum; what follows the stream is accepted as GNU tar accepts it
// (zeros after gzip, xz's stream padding, anything after bzip2).
//
// # Owners, devices and the user namespace
//
// Owners are numeric ids only, as vmdb2's --numeric-owner. As root, Pack and
// Unpack work in-process and create files with their real owners and device
// nodes. As an ordinary user, the tree walk runs as root of the build's user
// namespace (stage/userns, through a helper registered by this package), so
// that files owned by mapped ids (etc/shadow is ns 0:42) can be read and
// created with the right owners; the (de)compression stays in the calling
// process and the tar stream goes through a pipe. A program using this package
// as an ordinary user must therefore call userns.Init first thing in main.
//
// Unpack creates every member in stream order; the data, owner, mode,
// xattrs and times of regular files are written on a second goroutine
// (through at most 8 MiB of buffers), so that writing one file overlaps
// with decompressing and parsing the next. Directories get their modes and
// times once everything is written.
//
// Device nodes cannot be created inside an unprivileged user namespace. When
// mknod fails with EPERM, Unpack creates nothing at the device's path and
// records it in the device manifest (UnpackOptions.DeviceManifest, a file
// outside the tree; see [Manifest] for its format); a later step adds the
// nodes to the filesystem image (for ext4 with debugfs) and Pack puts them
// back into the tarball as real device entries. No placeholder file is
// created, so a tree built from the stage without that fix-up lacks the
// nodes rather than holding bogus regular files in their place.
//
// # Confinement
//
// Every member is created relative to the target directory with openat2's
// RESOLVE_IN_ROOT: a symlink unpacked earlier (absolute or relative) is
// resolved as if the target were "/", so `evil -> /tmp/x` followed by
// `evil/file` writes TARGET/tmp/x/file, never /tmp/x/file. Leading "/" of
// member names and link targets are stripped (as GNU tar does); a member
// name or hard-link target with a ".." component is refused with an error.
// Symlink targets are stored as they are: they are only ever resolved inside
// the target.
//
// Pack walks the tree through directory descriptors and never follows a
// link: each directory of dirs is opened one component at a time (a nested
// filesystem's directory behind a link, "boot -> /elsewhere", is an error,
// not an archive of /elsewhere), every entry is examined and opened relative
// to its open parent, and a regular file is read only once the descriptor
// opened for it (O_PATH, which opens nothing) shows the same regular file:
// a FIFO or device node, or something swapped in under the walk, is never
// opened.
//
// # Reproducibility
//
// Pack writes entries in name order (a depth-first walk with each directory's
// entries sorted bytewise, so the order is GNU tar's --sort=name), numeric
// owners without user or group names, mtimes in whole seconds clamped to
// PackOptions.SourceDateEpoch when it is set, no atime or ctime, xattrs as
// SCHILY.xattr PAX records (the form GNU tar --xattrs and libarchive read),
// hard links as links to the first name. The compressors run with fixed
// settings whose output does not depend on the number of CPUs, so one tree
// gives one byte sequence. The tarball is written to a temporary file in the
// same directory, synced and renamed into place: a failed or cancelled Pack
// leaves no file at the tarball's name (a killed process can leave a
// NAME.*.tmp file, never a partial NAME).
package rootfs
