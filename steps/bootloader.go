package steps

// BootLoader is one boot loader a build installs: a `grub` step's flavour
// (bios, uefi or ieee1275) and the architecture of the target it was
// installed for. --boot-check chooses the firmware to boot the image with
// from these.
type BootLoader struct {
	Flavour string
	Arch    string
	Step    *Step // the grub step
}

// noteBootLoader records that s, a grub step, installed its boot loader.
func (st *State) noteBootLoader(s *Step) {
	st.bootLoaders = append(st.bootLoaders, BootLoader{Flavour: s.Str("grub"), Arch: st.Arch, Step: s})
}

// BootLoaders are the boot loaders the build's grub steps installed, in
// the order they ran.
func (b *Build) BootLoaders() []BootLoader { return b.State.bootLoaders }

// BootLoaders are the boot loaders the plan's grub steps will install (as
// far as Preflight could tell: a grub step that `unless` may skip is
// included, one it surely skips is not). Valid after Preflight.
func (p *Plan) BootLoaders() []BootLoader { return p.bootLoaders }

// simBootLoader records a grub step's boot loader in the preflight.
func (sm *sim) simBootLoader(s *Step) {
	if sm.running == no {
		return
	}
	sm.plan.bootLoaders = append(sm.plan.bootLoaders, BootLoader{Flavour: s.Str("grub"), Arch: sm.arch, Step: s})
}
