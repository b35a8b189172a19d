package steps

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/internal/debarch"
	"github.com/vmdb2-go/vmdb2/partition"
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Host is what the preflight knows of the machine and the command line of
// a build. NewHost fills it from the real machine; tests replace the
// functions.
type Host struct {
	// Output, Image and RootfsTarball are the command line's paths ("" when
	// not given; with neither Output nor Image, as in --dry-run, the disk
	// steps' devices are not compared with them).
	Output, Image, RootfsTarball string
	// Unprivileged is true for an ordinary user, whose build sees only the
	// ids of its user namespace (0..userns.Size-1).
	Unprivileged bool
	// Namespace says why the build's user namespace cannot be used, or nil.
	Namespace func() error
	// ToolFound reports whether a host program can be run.
	ToolFound func(program string) bool
	// Stat describes a host file (copy-file sources, playbooks, the tarball).
	Stat func(path string) (os.FileInfo, error)
	// ProbeImage says why an image file of size bytes cannot be created at
	// path, or nil; it must write nothing.
	ProbeImage func(path string, size int64) error
	// CheckArch says why this host cannot run programs of the Debian
	// architecture arch (no qemu-user binfmt_misc handler for it), or nil.
	CheckArch func(arch string) error
}

// NewHost describes this machine for a build with the given paths.
func NewHost(output, image, rootfsTarball string) Host {
	return Host{
		Output: output, Image: image, RootfsTarball: rootfsTarball,
		Unprivileged: os.Geteuid() != 0,
		Namespace:    userns.Available,
		ToolFound:    hostToolFound,
		Stat:         os.Stat,
		ProbeImage:   probeImage,
		CheckArch:    bootstrap.CheckArch,
	}
}

// tri is a fact the simulation knows to hold (yes), not to hold (no), or
// cannot know before the build runs (maybe).
type tri int8

const (
	no tri = iota
	maybe
	yes
)

// Preflight refuses, before anything is written, what the build would
// fail on later and can be known now. It is one simulation of the build:
// the steps run in order on a model of vmdb2's state (which tags exist,
// where they are mounted, which filesystem each has, the state flags that
// `unless` tests) and on partition tables kept in memory (partition.Simulate),
// with the same checks and messages the steps give when they run; then the
// teardowns run in reverse. Along the way it collects the host programs,
// host files and ids the build needs and checks them on h.
//
// A check never refuses a spec that would build: a step that `unless` may
// or may not skip (its flags depend on what happens at run time) is not
// checked, and after it, nor after a step the plan could not read, is the
// model trusted for tags and partitions any more; host files are not
// required after a `shell` or `ansible` step, which may create them.
func (p *Plan) Preflight(h Host) Diagnostics {
	sm := newSim(p, h)
	p.bootLoaders = nil
	next := 0
	for _, s := range p.Steps {
		for ; next < s.Index; next++ {
			if kind, broken := p.broken[next]; broken {
				sm.broken(kind)
			}
		}
		next = s.Index + 1
		sm.step(s)
	}
	sm.teardowns()
	for _, d := range sm.disks {
		d.Close()
	}
	return sm.ds
}

// modelFree are the kinds that change neither the tags, the partitions,
// the flags nor the architecture: a step of one of them that could not be
// planned leaves the model sure.
var modelFree = map[string]bool{"echo": true, "error": true, "kpartx": true, "fstab": true,
	"create-dir": true, "create-file": true, "copy-file": true, "copy-dir": true, "chroot": true,
	"shell": true, "ansible": true, "resize-rootfs": true, "grub": true}

// broken accounts for a step the plan could not read (kind nil: no kind
// matched): its effects are unknown unless its kind has none on the model.
func (sm *sim) broken(kind *Kind) {
	if kind == nil || !modelFree[kind.Name] {
		sm.unsure = true
	}
	if kind == nil || kind.Name == "shell" || kind.Name == "ansible" {
		sm.hostChanged = true
	}
}

// sim is the state of one preflight simulation.
type sim struct {
	plan  *Plan
	host  Host
	tags  Tags
	disks map[string]*partition.Disk
	flags map[string]tri
	arch  string
	// unsure: the model may differ from the build from here on, so tag and
	// partition checks are off. hostChanged: a step ran on the host and may
	// have created the files later steps read.
	unsure, hostChanged bool
	// cached: a cache-rootfs step may have written the tarball by now.
	cached bool
	// devices are the tags whose trees get recorded device nodes.
	devices map[string]bool
	lvm     lvmModel // the volume groups (lvm.go)
	// cur is the step being simulated and whether it runs.
	cur     *Step
	running tri
	ran     []*Step
	done    map[string]bool // host problems already reported
	ds      Diagnostics
}

func newSim(p *Plan, h Host) *sim {
	return &sim{plan: p, host: h, disks: map[string]*partition.Disk{}, flags: map[string]tri{},
		arch: HostArch(), devices: map[string]bool{}, done: map[string]bool{}}
}

// step simulates one step: its run, or what it does when skipped.
func (sm *sim) step(s *Step) {
	sm.cur = s
	sm.running = sm.runs(s.Unless)
	if !s.Kind.Implemented {
		// Refused by Plan.Unimplemented; its effects are unknown.
		sm.unsure = true
		return
	}
	if sm.running == maybe {
		// Simulated for its effects, which become uncertain.
		defer func() { sm.unsure = true }()
	}
	if sm.running == no {
		if f := skippedEffects[s.Kind.Name]; f != nil {
			sm.running = yes
			f(sm, s)
		}
		return
	}
	sm.ran = append(sm.ran, s)
	if sm.running == yes && !namespaceFree[s.Kind.Name] {
		sm.needNamespace()
	}
	if f := simulations[s.Kind.Name]; f != nil {
		f(sm, s)
	}
}

// runs evaluates `unless` as Build.unless does, on the model's flags.
func (sm *sim) runs(u *Value) tri {
	skip := no
	switch {
	case u == nil:
	case u.Kind == String:
		if u.Str != "" {
			skip = sm.flag(u.Str)
		}
	case u.Kind == List:
		skip = yes
		for _, item := range u.List {
			skip = min(skip, sm.flag(item.Str))
		}
	}
	return yes - skip
}

func (sm *sim) flag(name string) tri {
	if name == "arch" || name == "tags" {
		return yes
	}
	return sm.flags[name]
}

// setFlag sets a state flag as the current step would.
func (sm *sim) setFlag(name string, v tri) {
	sm.flags[name] = max(sm.flags[name], min(v, sm.running))
}

// teardowns simulates the teardowns of the steps that ran, in reverse,
// `unless` evaluated again as the build does.
func (sm *sim) teardowns() {
	for i := len(sm.ran) - 1; i >= 0; i-- {
		s := sm.ran[i]
		sm.cur, sm.running = s, sm.runs(s.Unless)
		if sm.running != yes || s.Kind.Name != "mount" {
			continue
		}
		if tag, err := sm.tags.Get(s.Str("mount")); err == nil && tag.Mounted && tag.FSType == "" {
			sm.stateErr(s.Line, fmt.Errorf("tag %s was mounted but has no filesystem: add a `mkfs` step for it", tag.Name))
		}
	}
	for _, tag := range sm.tags.All() {
		if sm.devices[tag.Name] && isExt(tag.FSType) {
			sm.needTools(sm.plan.stepOf(tag), "debugfs")
		}
	}
}

func isExt(t string) bool { return t == "ext2" || t == "ext3" || t == "ext4" }

// report adds an error at line of the current step.
func (sm *sim) report(line int, msg string) {
	if !strings.HasPrefix(msg, sm.cur.Name()+": ") {
		msg = sm.cur.Name() + ": " + msg
	}
	sm.ds = append(sm.ds, Diagnostic{File: sm.plan.File, Line: line, Msg: msg})
}

// stateErr reports an error that depends on the model of tags, partitions
// and flags: only while the model is sure and the step certainly runs.
func (sm *sim) stateErr(line int, err error) {
	if err != nil && !sm.unsure && sm.running == yes {
		sm.report(line, err.Error())
	}
}

// hostErr reports an error about the host (a missing program or file, the
// namespace), once per key, for steps that certainly run.
func (sm *sim) hostErr(line int, key, msg string) {
	if sm.running != yes || sm.done[key] {
		return
	}
	sm.done[key] = true
	sm.report(line, msg)
}

// needTools requires host programs for step s.
func (sm *sim) needTools(s *Step, programs ...string) {
	if s == nil {
		return
	}
	for _, prog := range programs {
		if !sm.host.ToolFound(prog) {
			saved := sm.cur
			sm.cur = s
			sm.hostErr(s.Line, "tool "+prog, fmt.Sprintf("this step needs the host program %s, which is not installed: %s",
				prog, installHint(prog)))
			sm.cur = saved
		}
	}
}

// namespaceFree are the kinds that never need the build's user namespace.
var namespaceFree = map[string]bool{"echo": true, "error": true, "mkimg": true, "mklabel": true,
	"mkpart": true, "set_part_flag": true, "kpartx": true}

// needNamespace checks, at the first step that needs it, that the build's
// user namespace can be made.
func (sm *sim) needNamespace() {
	if sm.done["namespace"] || sm.host.Namespace == nil {
		return
	}
	if err := sm.host.Namespace(); err != nil {
		sm.hostErr(sm.cur.Line, "namespace", fmt.Sprintf("this step runs in the build's user namespace, which cannot be made here: %v", err))
	}
	sm.done["namespace"] = true
}

// needArch checks, at the first step that runs the target's programs,
// that this host can run those of the build's architecture: a foreign
// architecture without its qemu-user handler is refused before anything
// is written, with the line that registers it, instead of at that step.
// A name the architecture table lacks (a template's __ARCH__ placeholder
// in the corpus) is left to the step, whose error lists the known ones.
func (sm *sim) needArch() {
	key := "arch " + sm.arch
	if _, known := debarch.Get(sm.arch); !known || sm.host.CheckArch == nil || sm.arch == HostArch() || sm.done[key] {
		return
	}
	if err := sm.host.CheckArch(sm.arch); err != nil {
		sm.hostErr(sm.cur.Line, key, strings.TrimPrefix(err.Error(), "bootstrap: "))
	} else {
		sm.done[key] = true
	}
}

// stepOf returns the mkfs step that gave tag its filesystem.
func (p *Plan) stepOf(tag *Tag) *Step {
	for _, s := range p.Steps {
		if s.Kind.Name == "mkfs" && s.Str("partition") == tag.Name {
			return s
		}
	}
	return nil
}

// probeImage checks, without leaving anything behind, that an image file
// of size bytes can be created at path: an unnamed O_TMPFILE file in its
// directory is grown to size and dropped. Filesystems without O_TMPFILE
// are not probed.
func probeImage(path string, size int64) error {
	if fi, err := os.Stat(path); err == nil {
		switch {
		case fi.IsDir():
			return fmt.Errorf("%s is a directory, not an image file", path)
		case unix.Access(path, unix.W_OK) != nil:
			return fmt.Errorf("cannot write %s: permission denied", path)
		case !fi.Mode().IsRegular():
			return nil
		}
	}
	dir := filepath.Dir(path)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("cannot create %s: the directory %s does not exist", path, dir)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS):
		return fmt.Errorf("cannot create %s: %s: %v", path, dir, err)
	case err != nil:
		return nil
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, size); errors.Is(err, unix.EFBIG) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("the filesystem of %s cannot hold a file of %d bytes (%v): use a smaller size, or an --output on a filesystem that allows larger files (xfs, btrfs)", dir, size, err)
	}
	return nil
}
