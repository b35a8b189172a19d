package steps

import (
	"errors"
	"io/fs"
	"os"

	"github.com/vmdb2-go/vmdb2/stage/rootfs"
)

// unpackRootfsKind unpacks the --rootfs-tarball cache into the tag's tree
// when the file exists (gzip, xz, zstd or plain tar, vmdb2's own caches
// included) and sets the `rootfs_unpacked` flag; otherwise it does nothing,
// as in vmdb2. Owners, modes, links, xattrs and device nodes are kept; as an
// ordinary user, device nodes are recorded and added to the filesystem when
// it is built. Unlike vmdb2, the host's /etc/resolv.conf is not copied into
// the image (commands in the target see it while they run).
var unpackRootfsKind = &Kind{
	Name:        "unpack-rootfs",
	Summary:     "unpack the --rootfs-tarball cache, if it exists",
	Implemented: true,
	Keys: []Key{
		{Name: "unpack-rootfs", Type: TStr, Required: true},
	},
	Run: func(b *Build, s *Step) error {
		tag, dir, err := b.mountedTree(s.Str("unpack-rootfs"))
		if err != nil {
			return err
		}
		tarball := b.Settings.RootfsTarball
		if tarball == "" {
			b.Detail("no --rootfs-tarball: nothing to unpack")
			return nil
		}
		if _, err := os.Stat(tarball); errors.Is(err, fs.ErrNotExist) {
			b.Progress("%s does not exist yet: nothing to unpack", tarball)
			return nil
		}
		st, err := b.Stage()
		if err != nil {
			return err
		}
		b.Progress("Unpacking %s", tarball)
		if err := rootfs.Unpack(b.ctx, tarball, dir, rootfs.UnpackOptions{DeviceManifest: st.MetaPath("devices.json"), RecordDevices: true}); err != nil {
			return err
		}
		b.devicesTag = tag.Name
		b.State.SetFlag("rootfs_unpacked")
		return nil
	},
}
