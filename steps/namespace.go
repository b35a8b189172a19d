package steps

import (
	"fmt"
)

// mountedTree returns the tag named by a step key, which must be mounted,
// and its tree's host path (checked now: see tagdir.go).
func (b *Build) mountedTree(name string) (*Tag, string, error) {
	tag, err := b.mountedTag(name)
	if err != nil {
		return nil, "", err
	}
	dir, err := b.tagDir(tag)
	return tag, dir, err
}

// rootTree returns the host path of the tree mounted at / (checked now).
func (b *Build) rootTree() (string, error) {
	tag, err := b.State.Tags.Root()
	if err != nil {
		return "", err
	}
	return b.tagDir(tag)
}

// mountedTag returns the tag named by a step key, which must be mounted.
func (b *Build) mountedTag(name string) (*Tag, error) {
	tag, err := b.State.Tags.Get(name)
	if err != nil {
		return nil, err
	}
	if !tag.Mounted {
		return nil, fmt.Errorf("tag %s is not mounted (add a `mount: %s` step before this one)", name, name)
	}
	return tag, nil
}

// buildEnv is the environment steps pass to the tools that install
// packages (debootstrap, apt): the proxy settings and SOURCE_DATE_EPOCH.
func (b *Build) buildEnv() []string {
	env := b.proxyEnv()
	if b.Settings.SourceDateEpoch.IsZero() {
		return env
	}
	return append(env, fmt.Sprintf("SOURCE_DATE_EPOCH=%d", b.Settings.SourceDateEpoch.Unix()))
}
