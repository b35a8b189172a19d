package steps

import (
	"context"
	"fmt"
	"os"

	"github.com/vmdb2-go/vmdb2/fs"
	"github.com/vmdb2-go/vmdb2/fs/reuse"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// importFilesystem gives a reused tag mounted without mkfs its filesystem:
// probed from the image (type, UUID, label, features) and its files
// imported into dir, so that at the mount's teardown it is built again
// from dir like one mkfs made, with the same identity.
func (b *Build) importFilesystem(tag *Tag, dir string) error {
	st, err := b.Stage()
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
		return fmt.Errorf("tag %s: its mount point %s is not an empty directory in the parent's tree, so its filesystem's files cannot be imported there", tag.Name, tag.MountPoint)
	}
	src := reuse.Source{Image: tag.Image, Offset: tag.Offset, Size: tag.Size}
	info, err := reuse.Probe(b.ctx, b.ToolRunner(), src)
	if err != nil {
		return reusedErr(tag, err)
	}
	b.Progress("Importing the %s filesystem of %s (UUID %s) into %s", info.Type, tag.Name, fs.UUIDText(info.Type, info.UUID, info.VolumeID), dir)
	ns := func(ctx context.Context, c userns.Cmd) error { return b.run(ctx, inNamespace, c) }
	res, err := reuse.Import(b.ctx, b.ToolRunner(), ns, src, info, dir, st.MetaPath(""))
	if err != nil {
		return fmt.Errorf("tag %s: importing its %s filesystem from %s: %w", tag.Name, info.Type, tag.Image, err)
	}
	for _, lost := range res.Lost {
		b.Warnf("tag %s: %s", tag.Name, lost)
	}
	tag.FSType, tag.Label, tag.Options = info.Type, info.Label, info.Options
	tag.UUID, tag.HashSeed, tag.VolumeID = info.UUID, info.HashSeed, info.VolumeID
	tag.UUIDText = fs.UUIDText(info.Type, info.UUID, info.VolumeID)
	tag.imported = res.Devices
	b.Detail("tag %s: imported %d entries, %s of data; built again with options %s", tag.Name, res.Files, sizeText(res.Bytes), info.Options)
	return nil
}

// reusedErr is the refusal of a reused tag whose filesystem cannot be read.
func reusedErr(tag *Tag, err error) error {
	return fmt.Errorf("tag %s has no mkfs step, so its filesystem is read from %s: %w", tag.Name, tag.Image, err)
}
