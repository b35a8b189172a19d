package steps

import (
	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
)

// debootstrapKind installs a Debian base system into the target tag's tree
// with debootstrap, run as root of the build's user namespace (so it works
// as an ordinary user), with a package cache shared between builds. Device
// nodes are recorded and added to the filesystem when it is built, both as
// root and as an ordinary user, so the two give the same image. The
// architecture becomes the build's (also when the step is skipped), as in
// vmdb2.
var debootstrapKind = &Kind{
	Name:        "debootstrap",
	Summary:     "install a Debian base system into the target",
	Implemented: true,
	Check:       checkDebootstrap,
	Keys: []Key{
		{Name: "debootstrap", Type: TStr, Required: true},
		{Name: "target", Type: TStr, Required: true},
		{Name: "mirror", Type: TStr, Required: true},
		{Name: "arch", Type: TStr, Default: ""},
		{Name: "keyring", Type: TStr, Default: ""},
		{Name: "install_keyring", Type: TBool, Default: false},
		{Name: "variant", Type: TStr, Default: "-"},
		{Name: "components", Type: TList, Default: []string{"main"}},
		{Name: "include", Type: TList, Default: []string{}},
		{Name: "exclude", Type: TList, Default: []string{}},
		{Name: "require_empty_target", Type: TBool, Default: true},
		{Name: "tls_ca_certs", Type: TList, Default: []string{}},
	},
	Run: func(b *Build, s *Step) error {
		return b.bootstrap(s, s.Str("debootstrap"), s.Bool("require_empty_target"), s.Strings("include"), s.Bool("install_keyring"))
	},
	RunEvenIfSkipped: func(b *Build, s *Step) error {
		if a := s.Str("arch"); a != "" {
			b.State.Arch = a
		}
		return nil
	},
}

// bootstrap runs the debootstrap engine for the debootstrap and
// qemu-debootstrap steps.
func (b *Build) bootstrap(s *Step, suite string, requireEmpty bool, include []string, installKeyring bool) error {
	tag, dir, err := b.mountedTree(s.Str("target"))
	if err != nil {
		return err
	}
	if requireEmpty {
		if err := bootstrap.CheckEmpty(dir); err != nil {
			return err
		}
	}
	arch := s.Str("arch")
	if arch == "" {
		arch = b.State.Arch
	}
	b.State.Arch = arch
	if err := bootstrap.CheckArch(arch); err != nil {
		return err
	}
	st, err := b.Stage()
	if err != nil {
		return err
	}
	b.Progress("Installing Debian %s (%s) from %s", suite, arch, s.Str("mirror"))
	err = bootstrap.Bootstrap(b.ctx, bootstrap.Options{
		Suite: suite, Mirror: s.Str("mirror"), Arch: arch, Variant: s.Str("variant"),
		Components: s.Strings("components"), Include: include, Exclude: s.Strings("exclude"),
		Keyring: s.Str("keyring"), InstallKeyring: installKeyring,
		Target: dir, DeviceManifest: st.MetaPath("devices.json"), RecordDevices: true,
		Engine: bootstrapEngine(s), Run: b.nsRun, Progress: b.progressFunc(), Env: b.buildEnv(),
		TempDir: st.MetaPath("tmp"),
	})
	if err != nil {
		return err
	}
	b.devicesTag = tag.Name
	return b.installCACerts(dir, s.Strings("tls_ca_certs"))
}

// progressFunc reports a message of a stage package as the step's
// progress.
func (b *Build) progressFunc() func(string) {
	return func(msg string) { b.Progress("%s", msg) }
}

// bootstrapEngine picks the engine: mmdebstrap for debootstrap steps (the
// same packages and files as debootstrap, installed in a third of the time;
// see stage/bootstrap), debootstrap for qemu-debootstrap steps, which vmdb2
// runs through debootstrap's qemu wrapper and which were proven (booted) with it.
//
// With `exclude` (vmdb2 0.41) it is debootstrap too: mmdebstrap has no
// --exclude, and its packages come from apt's resolver, not from
// debootstrap's list with the excluded names taken out.
func bootstrapEngine(s *Step) bootstrap.Engine {
	if s.Kind.Name == "qemu-debootstrap" || len(s.Strings("exclude")) > 0 {
		return bootstrap.EngineDebootstrap
	}
	return bootstrap.EngineMmdebstrap
}
