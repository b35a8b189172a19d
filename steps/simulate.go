package steps

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/vmdb2-go/vmdb2/fs"
	"github.com/vmdb2-go/vmdb2/fs/reuse"
	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/partition/bootcode"
	"github.com/vmdb2-go/vmdb2/stage/grub"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// simulations is what each kind does to the preflight's model: the tags
// it creates, mounts or needs, the partitions it makes, the flags it sets,
// the host programs and files it needs. The checks and messages are the
// ones the kind's Run gives (see each kind's file).
var simulations map[string]func(*sim, *Step)

// skippedEffects is what a kind does when `unless` skips it
// (Kind.RunEvenIfSkipped).
var skippedEffects map[string]func(*sim, *Step)

func init() {
	simulations = map[string]func(*sim, *Step){
		"mkimg": simMkimg, "mklabel": simMklabel, "mkpart": simMkpart,
		"set_part_flag": simPartFlag, "kpartx": simKpartx,
		"mkfs": simMkfs, "mount": simMount, "fstab": simFstab,
		"create-dir": simFileStep, "create-file": simFileStep, "copy-file": simFileStep, "copy-dir": simFileStep,
		"unpack-rootfs": simUnpack, "cache-rootfs": simCache,
		"debootstrap": simBootstrap, "qemu-debootstrap": simBootstrap,
		"apt": func(sm *sim, s *Step) {
			sm.mounted(s, firstNonEmpty(s.Str("tag"), s.Str("fs-tag")))
			sm.needArch()
			sm.setFlag("got_eatmydata", yes)
		},
		"chroot": func(sm *sim, s *Step) {
			sm.mounted(s, s.Str("chroot"))
			sm.needArch()
		},
		"shell": func(sm *sim, s *Step) {
			sm.mounted(s, s.Str("root-fs"))
			sm.hostChanged = true
		},
		"virtual-filesystems": func(sm *sim, s *Step) {
			sm.mounted(s, s.Str("virtual-filesystems"))
			sm.setFlag("virtuals", yes)
		},
		"resize-rootfs": func(sm *sim, s *Step) { sm.mounted(s, s.Str("resize-rootfs")) },
		"ansible":       simAnsible,
		"grub":          simGrub,
		"cryptsetup":    simCryptsetup, "luks": simCryptsetup,
	}
	simLVM(simulations)
	skippedEffects = map[string]func(*sim, *Step){
		"debootstrap": func(sm *sim, s *Step) {
			if a := s.Str("arch"); a != "" {
				sm.arch = a
			}
		},
		"qemu-debootstrap": func(sm *sim, s *Step) {
			sm.arch = s.Str("arch")
			sm.needNamespace()
			sm.mounted(s, s.Str("target"))
			sm.needArch() // apt-get update runs in the target
		},
	}
}

// mounted returns the tag name, which must be mounted (Build.mountedTag).
func (sm *sim) mounted(s *Step, name string) *Tag {
	tag, err := sm.tags.Get(name)
	if err == nil && !tag.Mounted {
		err = fmt.Errorf("tag %s is not mounted (add a `mount: %s` step before this one)", name, name)
	}
	sm.stateErr(s.Line, err)
	if err != nil {
		return nil
	}
	return tag
}

// disk returns the simulated disk a disk step's key names, which must be
// the --output or --image file (Build.imagePath). A disk no earlier step
// created is read (never written) from the file.
func (sm *sim) disk(s *Step, key string) *partition.Disk {
	path := s.Str(key)
	if sm.host.Output != "" || sm.host.Image != "" {
		if err := checkImagePath(path, sm.host.Output, sm.host.Image); err != nil {
			sm.hostErr(s.KeyLine(key), "device "+path, err.Error())
			return nil
		}
	}
	if d := sm.disks[filepath.Clean(path)]; d != nil {
		return d
	}
	d, err := partition.SimulateOn(path)
	if err != nil {
		if sm.host.Output == "" && sm.host.Image == "" {
			// --dry-run without an image: nothing to read.
			sm.unsure = true
			return nil
		}
		if errors.Is(err, iofs.ErrNotExist) {
			err = fmt.Errorf("%w (an image is made by a `mkimg` step before this one)", err)
		}
		sm.stateErr(s.KeyLine(key), err)
		return nil
	}
	sm.disks[filepath.Clean(path)] = d
	return d
}

// simKpartx: with tags, the partitions of the --image file become tags
// (kpartxTags); a --dry-run without an image makes them of unknown place.
func simKpartx(sm *sim, s *Step) {
	names := s.Strings("tags")
	if len(names) == 0 {
		sm.disk(s, "kpartx")
		return
	}
	if sm.host.Output == "" && sm.host.Image == "" {
		sm.unknownPartitionTags(s, names)
		return
	}
	if err := kpartxImage(s.Str("kpartx"), sm.host.Image); err != nil {
		sm.stateErr(s.KeyLine("kpartx"), err)
		sm.unknownPartitionTags(s, names)
		return
	}
	d := sm.disk(s, "kpartx")
	if d == nil {
		sm.unknownPartitionTags(s, names)
		return
	}
	if err := addPartitionTags(&sm.tags, s.Str("kpartx"), d.Partitions(), names); err != nil {
		sm.stateErr(s.KeyLine("tags"), err)
		sm.unknownPartitionTags(s, names)
	}
}

// unknownPartitionTags makes kpartx's tags of partitions whose place is
// not known (no image to read, or it was refused), so that the steps using
// them are still checked.
func (sm *sim) unknownPartitionTags(s *Step, names []string) {
	sm.unsure = true
	for i, name := range names {
		if _, err := sm.tags.Get(name); err == nil {
			continue
		}
		tag, _ := sm.tags.Add(name)
		tag.Image, tag.PartNumber, tag.Size, tag.Reused = s.Str("kpartx"), i+1, 1, true
	}
}

func simMkimg(sm *sim, s *Step) {
	path := s.Str("mkimg")
	size, err := partition.ParseImageSize(s.Str("size"))
	if err != nil {
		return // reported by the kind's Check
	}
	if sm.host.Output != "" || sm.host.Image != "" {
		if err := checkImagePath(path, sm.host.Output, sm.host.Image); err != nil {
			sm.hostErr(s.KeyLine("mkimg"), "device "+path, err.Error())
			return
		}
		if err := sm.host.ProbeImage(path, size); err != nil {
			sm.hostErr(s.Line, "probe "+path, err.Error())
		}
	}
	d, err := partition.Simulate(path, size)
	if err != nil {
		sm.stateErr(s.Line, err)
		return
	}
	if old := sm.disks[filepath.Clean(path)]; old != nil {
		old.Close()
	}
	sm.disks[filepath.Clean(path)] = d
}

// simIDs are the identifiers of simulated labels: the geometry does not
// depend on them.
var simIDs = partition.LabelIDs{DiskGUID: partition.GUID{0: 1}, MBRSignature: 1}

func simMklabel(sm *sim, s *Step) {
	if d := sm.disk(s, "device"); d != nil {
		sm.stateErr(s.KeyLine("mklabel"), d.MakeLabel(s.Str("mklabel"), simIDs))
	}
}

func simMkpart(sm *sim, s *Step) {
	d := sm.disk(s, "device")
	name := firstNonEmpty(s.Str("tag"), s.Str("part-tag"))
	if name != "" {
		if _, err := sm.tags.Get(name); err == nil {
			sm.stateErr(s.KeyLine(tagKey(s)), sm.tags.addErr(name))
			return
		}
	}
	if d == nil {
		sm.unsure = sm.unsure || name != ""
		return
	}
	p, err := d.MakePart(s.Str("mkpart"), s.Str("fs-type"), s.Str("start"), s.Str("end"))
	if err != nil {
		sm.stateErr(s.Line, err)
		sm.unsure = sm.unsure || name != ""
		return
	}
	if name == "" {
		return
	}
	if tag, err := sm.tags.Add(name); err == nil {
		tag.Image, tag.PartNumber, tag.Offset, tag.Size = s.Str("device"), p.Number, p.Offset, p.Size
	}
}

// tagKey is the key of a mkpart step that names its tag.
func tagKey(s *Step) string {
	if s.Str("tag") != "" {
		return "tag"
	}
	return "part-tag"
}

func simPartFlag(sm *sim, s *Step) {
	d := sm.disk(s, "set_part_flag")
	tag, err := sm.tags.Get(s.Str("tag"))
	if err == nil && tag.PartNumber == 0 {
		err = fmt.Errorf("tag %s is not a partition", tag.Name)
	}
	if err != nil {
		sm.stateErr(s.KeyLine("tag"), err)
		return
	}
	if d != nil {
		sm.stateErr(s.KeyLine("flag"), d.SetFlag(tag.PartNumber, s.Str("flag"), s.Str("state") == "enabled"))
	}
}

func simMkfs(sm *sim, s *Step) {
	tag, err := sm.tags.Get(s.Str("partition"))
	switch {
	case err != nil:
	case tag.Size == 0:
		err = fmt.Errorf("tag %s has no partition to make a filesystem on", tag.Name)
	case tag.FSType != "":
		err = fmt.Errorf("Already has filesystem type: %s", tag.Name)
	}
	if err != nil {
		sm.stateErr(s.KeyLine("partition"), err)
		return
	}
	tag.FSType, tag.UUIDText = s.Str("mkfs"), "(assigned by mkfs)"
	if sm.running == yes {
		sm.needTools(s, fsPrograms[tag.FSType]...)
	}
}

func simMount(sm *sim, s *Step) {
	tag, err := sm.tags.Get(s.Str("mount"))
	switch {
	case err != nil:
	case tag.Mounted:
		err = fmt.Errorf("Already mounted tag: %s", tag.Name)
	case tag.FSType != "" && !fs.HoldsFiles(tag.FSType):
		err = fmt.Errorf("tag %s holds %s, which cannot be mounted", tag.Name, tag.FSType)
	}
	if err != nil {
		sm.stateErr(s.KeyLine("mount"), err)
		return
	}
	if alias := s.Str("fs-tag"); alias != "" && alias != tag.Name {
		if _, err := sm.tags.Get(alias); err == nil {
			sm.stateErr(s.KeyLine("fs-tag"), fmt.Errorf("fs-tag %s: Tag already used: %s", alias, alias))
			return
		}
		tag.Aliases = append(tag.Aliases, alias)
	}
	tag.MountPoint = "/"
	if s.Str("dirname") != "" {
		parent, err := sm.tags.Get(s.Str("mount-on"))
		if err == nil && !parent.Mounted {
			err = fmt.Errorf("tag %s is not mounted", parent.Name)
		}
		if err != nil {
			sm.stateErr(s.KeyLine("mount-on"), fmt.Errorf("mount-on: %w", err))
			return
		}
		tag.MountPoint, tag.MountOn = s.Str("dirname"), parent.Name
	}
	tag.Mounted = true
	if tag.Reused && tag.FSType == "" {
		sm.reusedFilesystem(s, tag)
	}
}

// reusedFilesystem: a reused tag mounted without mkfs has the filesystem
// already in the image, whose type is read now where the partition is
// known (Build.importFilesystem reads the rest when it runs).
func (sm *sim) reusedFilesystem(s *Step, tag *Tag) {
	tag.FSType, tag.UUIDText = "(read from the image)", "(read from the image)"
	if sm.running == yes {
		sm.needTools(s, reusePrograms...)
	}
	if tag.Size <= 1 {
		return // no image to read (--dry-run), or an LV's scratch file
	}
	if _, err := os.Stat(tag.Image); err != nil {
		return
	}
	t, err := reuse.Sniff(reuse.Source{Image: tag.Image, Offset: tag.Offset, Size: tag.Size})
	if err != nil {
		sm.stateErr(s.KeyLine("mount"), reusedErr(tag, err))
		return
	}
	tag.FSType = t
}

func simFstab(sm *sim, s *Step) {
	if sm.mounted(s, s.Str("fstab")) == nil {
		return
	}
	for _, tag := range sm.tags.All() {
		if tag.Mounted && tag.UUIDText == "" {
			sm.stateErr(s.Line, fmt.Errorf("Unknown UUID for tag %s (to be mounted on %s): it needs a mkfs step", tag.Name, tag.MountPoint))
		}
	}
}

// simFileStep: the file steps write into the root filesystem and may name
// a host source and owners.
func simFileStep(sm *sim, s *Step) {
	if _, err := sm.tags.Root(); err != nil {
		sm.stateErr(s.Line, err)
	}
	if s.Kind.Name == "copy-file" || s.Kind.Name == "copy-dir" {
		sm.hostSource(s, "src", s.Kind.Name == "copy-dir")
	}
	if sm.host.Unprivileged {
		for _, key := range []string{"uid", "gid"} {
			if n := s.Int(key); n >= userns.Size {
				sm.hostErr(s.KeyLine(key), fmt.Sprintf("%s %d", key, n), fmt.Sprintf(
					"%s %d is outside the ids an ordinary user's build has (0 to %d: the user's own id and the %d of /etc/subuid and /etc/subgid): use an id below %d, or build as root",
					key, n, userns.Size-1, userns.Size-1, userns.Size))
			}
		}
	}
}

// hostSource checks that a step's host file (relative to the current
// directory, as vmdb2 reads it) exists, unless an earlier step on the host
// may have made it.
func (sm *sim) hostSource(s *Step, key string, dir bool) {
	path := s.Str(key)
	if path == "" || sm.hostChanged {
		return
	}
	what := "file"
	if dir {
		what = "directory"
	}
	fi, err := sm.host.Stat(path)
	switch {
	case err != nil:
		sm.hostErr(s.KeyLine(key), "source "+path, fmt.Sprintf("the %s %s does not exist on this host (`%s` is relative to the current directory, %s)", what, path, key, cwd()))
	case dir && !fi.IsDir():
		sm.hostErr(s.KeyLine(key), "source "+path, fmt.Sprintf("%s is not a directory", path))
	case !dir && fi.IsDir():
		sm.hostErr(s.KeyLine(key), "source "+path, fmt.Sprintf("%s is a directory; copy it with a `copy-dir` step", path))
	}
}

func simUnpack(sm *sim, s *Step) {
	tag := sm.mounted(s, s.Str("unpack-rootfs"))
	tarball := sm.host.RootfsTarball
	if tarball == "" {
		sm.hostErr(s.Line, "tarball", "this step needs --rootfs-tarball FILE, the rootfs cache it unpacks if FILE exists (and that a cache-rootfs step writes); give it on the command line")
		return
	}
	has := no
	if _, err := sm.host.Stat(tarball); err == nil {
		has = yes
	} else if sm.cached {
		has = maybe
	}
	sm.setFlag("rootfs_unpacked", has)
	if tag != nil && has != no {
		sm.devices[tag.Name] = true
	}
}

func simCache(sm *sim, s *Step) {
	sm.mounted(s, s.Str("cache-rootfs"))
	if sm.host.RootfsTarball == "" {
		sm.hostErr(s.Line, "tarball", "this step needs --rootfs-tarball FILE, where it saves the rootfs cache (vmdb2: --rootfs-tarball MUST be set); give it on the command line")
	}
	sm.cached = true
}

func simBootstrap(sm *sim, s *Step) {
	tag := sm.mounted(s, s.Str("target"))
	if a := s.Str("arch"); a != "" {
		sm.arch = a
	}
	if tag != nil {
		sm.devices[tag.Name] = true
	}
	sm.needTools(s, string(bootstrapEngine(s)))
	sm.needArch()
}

func simAnsible(sm *sim, s *Step) {
	sm.mounted(s, s.Str("ansible"))
	sm.hostSource(s, "playbook", false)
	sm.hostSource(s, "config_file", false)
	sm.needTools(s, "ansible-playbook")
	sm.needArch()
	sm.hostChanged = true
}

func simGrub(sm *sim, s *Step) {
	sm.simBootLoader(s)
	sm.needArch() // the target's grub-mkimage and grub-mkconfig
	root := sm.mounted(s, firstNonEmpty(s.Str("tag"), s.Str("root-fs"), s.Str("rootfs")))
	if root == nil {
		return
	}
	if root.Partition() == nil || root.UUIDText == "" {
		sm.stateErr(s.Line, fmt.Errorf("grub: tag %s is not a filesystem on a partition (mkpart and mkfs it first)", root.Name))
		return
	}
	sm.stateErr(s.Line, grubBootReadable(&sm.tags, root))
	switch s.Str("grub") {
	case "uefi":
		sm.stateErr(s.Line, sm.grubESP(firstNonEmpty(s.Str("efi"), s.Str("efi-part"))))
	case "bios":
		if d := sm.disks[filepath.Clean(root.Partition().Image)]; d != nil {
			if _, err := bootcode.Place(d, minCoreSectors); err != nil {
				sm.stateErr(s.Line, fmt.Errorf("grub: no room for GRUB's core.img: %w", err))
			}
		}
	case "ieee1275":
		sm.stateErr(s.KeyLine("prep"), sm.grubPReP(s.Str("prep")))
	}
}

// grubESP checks the EFI system partition of a `grub: uefi` step.
func (sm *sim) grubESP(name string) error {
	esp, err := sm.tags.Get(name)
	switch {
	case err != nil:
		return fmt.Errorf("grub: the EFI system partition: %w", err)
	case esp.PartNumber == 0:
		return fmt.Errorf("grub: the EFI system partition %s is not a partition", esp.Name)
	case esp.FSType != "vfat":
		return fmt.Errorf("grub: the EFI system partition %s must be vfat, not %q", esp.Name, esp.FSType)
	}
	_, err = grub.EFIArch(sm.arch)
	return err
}

// grubPReP checks the PReP partition of a `grub: ieee1275` step.
func (sm *sim) grubPReP(name string) error {
	prep, err := sm.tags.Get(name)
	switch {
	case err != nil:
		return fmt.Errorf("grub: the PReP boot partition: %w", err)
	case prep.PartNumber == 0:
		return fmt.Errorf("grub: the PReP boot partition %s is not a partition (create it with mkpart)", prep.Name)
	case prep.FSType != "":
		return fmt.Errorf("grub: the PReP boot partition %s has a %s filesystem (mkfs); it must hold only GRUB's core.elf, drop its mkfs step", prep.Name, prep.FSType)
	case prep.Size < grub.MinPRePSize:
		return fmt.Errorf("grub: the PReP boot partition %s is %d KiB, too small for GRUB's core.elf (at least %d KiB; 8 MiB is usual)", prep.Name, prep.Size>>10, grub.MinPRePSize>>10)
	}
	return checkIEEE1275Arch(sm.arch)
}
