package steps

import (
	"errors"

	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
)

// aptKind installs packages in the target with apt-get, non-interactively,
// inside the build's user namespace, with the package cache shared between
// builds (a rebuild downloads nothing new) and dpkg's fsyncs off. vmdb2
// installs eatmydata into the image for that; here nothing extra stays in
// the image. The `got_eatmydata` flag is still set, as vmdb2's first apt
// step does.
var aptKind = &Kind{
	Name:        "apt",
	Summary:     "install packages with apt-get inside the target",
	Implemented: true,
	Check:       checkApt,
	Keys: []Key{
		{Name: "apt", Type: TStr, Required: true},
		{Name: "packages", Type: TList, Default: []string{}},
		{Name: "tag", Type: TStr, Default: ""},
		{Name: "fs-tag", Type: TStr, Default: ""},
		{Name: "recommends", Type: TBool, Default: true},
		{Name: "clean", Type: TBool, Default: true},
	},
	Run: func(b *Build, s *Step) error {
		name := firstNonEmpty(s.Str("tag"), s.Str("fs-tag"))
		if name == "" {
			return errors.New("Unknown tag: (give the root filesystem's tag in `tag`)")
		}
		_, dir, err := b.mountedTree(name)
		if err != nil {
			return err
		}
		b.State.SetFlag("got_eatmydata")
		return bootstrap.AptInstall(b.ctx, bootstrap.AptOptions{
			Root: dir, Packages: s.Strings("packages"), Recommends: s.Bool("recommends"), Clean: s.Bool("clean"),
			Run: b.nsRun, Progress: b.progressFunc(), Env: b.buildEnv(), Updates: &b.aptUpdates,
		})
	},
}
