package ext

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// Estimated is what Estimate measured.
type Estimated struct {
	Need  int64 // bytes of region the tree needs, about
	Files int64 // inodes (hard links counted once, the root included)
	Data  int64 // bytes of blocks for file data, directories and long symlinks
}

// Estimate measures the tree at dir and estimates how big an ext
// filesystem of type typ must be to hold it, assuming the defaults of
// Debian's mke2fs.conf (block size 1 KiB below 512 MiB, else 4 KiB; one
// inode per 4 KiB or 16 KiB; 256-byte inodes). have is the size that was
// tried: it chooses block size and inode ratio. It counts each file's
// allocated blocks (so sparse files count as sparse), directories, long
// symlinks, inode tables, a journal for ext3/ext4 and 3% for bitmaps,
// descriptors and reserved blocks. It is an estimate, not a promise: the
// error that reports it is raised by mke2fs itself failing.
func Estimate(dir, typ string, have int64) (Estimated, error) {
	bs, ratio := int64(4096), int64(16384)
	if have < 512<<20 {
		bs, ratio = 1024, 4096
	}
	roundUp := func(n int64) int64 { return (n + bs - 1) / bs * bs }
	var e Estimated
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if ok && st.Nlink > 1 && !d.IsDir() {
			k := [2]uint64{st.Dev, st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		e.Files++
		switch {
		case info.Mode().IsRegular():
			alloc := info.Size()
			if ok && st.Blocks*512 < alloc {
				alloc = st.Blocks * 512
			}
			e.Data += roundUp(alloc)
		case d.IsDir():
			e.Data += roundUp(max(info.Size(), bs))
		case info.Mode()&fs.ModeSymlink != 0 && info.Size() > 59:
			e.Data += bs
		}
		return nil
	})
	if err != nil {
		return e, fmt.Errorf("measuring %s: %w", dir, err)
	}
	byInodes := (e.Files + 16) * ratio
	need := e.Data
	for range 3 { // the journal depends on the size it is part of
		need = int64(float64(e.Data+journalBytes(typ, need, bs))/(1-256/float64(ratio)-0.03)) + 1<<20
	}
	e.Need = (max(need, byInodes) + 1<<20 - 1) >> 20 << 20
	return e, nil
}

// journalBytes follows ext2fs_default_journal_size (e2fsprogs 1.47).
func journalBytes(typ string, size, bs int64) int64 {
	if typ == "ext2" {
		return 0
	}
	blocks := size / bs
	var j int64
	switch {
	case blocks < 2048:
		return 0
	case blocks < 32768:
		j = 1024
	case blocks < 256*1024:
		j = 4096
	case blocks < 512*1024:
		j = 8192
	case blocks < 4096*1024:
		j = 16384
	case blocks < 8192*1024:
		j = 32768
	case blocks < 16384*1024:
		j = 65536
	case blocks < 32768*1024:
		j = 131072
	default:
		j = 262144
	}
	return j * bs
}
