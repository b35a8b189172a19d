package steps

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/vmdb2-go/vmdb2/partition/luks"
)

// cryptsetupKind is the `cryptsetup` step in both its spellings: vmdb2
// 0.26's (`password`, `name`) and 0.28's merged one (`name` and exactly
// one of `password`, `key-file`, `key-cmd`). It formats a LUKS2 header for
// the tag `cryptsetup` and opens the cleartext as the tag `name`, a
// scratch file in the stage that is encrypted into the container at this
// step's teardown (see luksLayer). `options` are extra luksFormat options.
var cryptsetupKind = &Kind{
	Name:        "cryptsetup",
	Summary:     "encrypt a partition with LUKS2 using a password, key file or key command",
	Implemented: true,
	Check:       checkCryptsetup,
	Keys: []Key{
		{Name: "cryptsetup", Type: TStr, Required: true},
		{Name: "name", Type: TStr, Required: true},
		{Name: "password", Type: TStr, Default: "", Secret: true},
		{Name: "key-file", Type: TStr, Default: ""},
		{Name: "key-cmd", Type: TStr, Default: ""},
		{Name: "options", Type: TStr, Default: ""},
	},
	Run:      func(b *Build, s *Step) error { return b.openLUKS(s, s.Str("name")) },
	Teardown: func(b *Build, s *Step) error { return b.closeLUKS(s.Str("name")) },
}

// keySources are the keys a passphrase can come from.
var keySources = []string{"password", "key-file", "key-cmd"}

func checkCryptsetup(s *Step, report reportFunc) {
	var given []string
	for _, k := range keySources {
		if s.Given(k) {
			given = append(given, k)
		}
	}
	switch {
	case len(given) == 0 && s.Kind.Name == "luks":
		report(s.Line, Error, "cryptsetup step MUST define one of key-file or key-cmd")
	case len(given) == 0:
		report(s.Line, Error, "cryptsetup: give the passphrase as exactly one of `password`, `key-file` or `key-cmd`")
	case len(given) > 1:
		report(s.KeyLine(given[1]), Error, "cryptsetup: give the passphrase as exactly one of %s, not %s", quoteList(keySources), quoteList(given))
	case s.Str(given[0]) == "":
		report(s.KeyLine(given[0]), Error, "cryptsetup: `%s` is empty; LUKS needs a passphrase", given[0])
	}
	if err := luks.CheckOptions(strings.Fields(s.Str("options"))); err != nil {
		report(s.KeyLine("options"), Error, "cryptsetup: %v", err)
	}
}

// openLUKS formats the container's header now, so that its UUID and data
// offset are known, and creates the cleartext tag name on a scratch file.
func (b *Build) openLUKS(s *Step, name string) error {
	under, err := b.State.Tags.Get(s.Str("cryptsetup"))
	if err != nil {
		return err
	}
	if under.Size == 0 || under.FSType != "" {
		return fmt.Errorf("tag %s is not a partition or volume free to encrypt", under.Name)
	}
	pass, err := b.passphrase(s)
	if err != nil {
		return err
	}
	st, err := b.Stage()
	if err != nil {
		return err
	}
	dir := st.MetaPath("luks-" + url.PathEscape(name))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("cryptsetup %s: %w", name, err)
	}
	b.Progress("Formatting the LUKS2 header of %s for %s", under.Name, name)
	c, err := luks.Format(b.ctx, luks.Spec{Size: under.Size, Passphrase: pass,
		UUID: FormatUUID(b.IDs.UUID("luks-uuid:" + sanitize(name))), Options: strings.Fields(s.Str("options")),
		Dir: dir, Run: b.ToolRunner()})
	if err != nil {
		return fmt.Errorf("cryptsetup %s: %w", under.Name, err)
	}
	clearFile, err := b.scratchFile(name, c.DataSize(under.Size))
	if err != nil {
		return err
	}
	tag, err := b.State.Tags.Add(name)
	if err != nil {
		return err
	}
	tag.Image, tag.Offset, tag.Size = clearFile, 0, c.DataSize(under.Size)
	tag.LUKS = &LUKSLayer{Name: name, UUID: c.UUID, Under: under, container: c}
	b.Detail("LUKS: name=%s luksuuid=%s on %s, data at %d, %s cleartext", name, c.UUID, under.Name, c.DataOffset, sizeText(tag.Size))
	return nil
}

// passphrase is the step's passphrase: password as given; key-file's whole
// content (a trailing newline included, as vmdb2 passes the file to
// cryptsetup); key-cmd's first line of output, run as `sh -ec CMD`.
func (b *Build) passphrase(s *Step) ([]byte, error) {
	switch {
	case s.Str("password") != "":
		return []byte(s.Str("password")), nil
	case s.Str("key-file") != "":
		p, err := hostPath(s.Str("key-file"))
		if err == nil {
			var data []byte
			if data, err = os.ReadFile(p); err == nil && len(data) == 0 {
				err = fmt.Errorf("%s is empty", p)
			}
			if err == nil {
				return data, nil
			}
		}
		return nil, fmt.Errorf("key-file: %w", err)
	}
	var out bytes.Buffer
	if err := b.secretCommand([]string{"sh", "-ec", s.Str("key-cmd")}, &out); err != nil {
		return nil, fmt.Errorf("key-cmd failed: %w", err)
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	if line == "" {
		return nil, errors.New("key-cmd printed no passphrase (its first line of output is the passphrase)")
	}
	return []byte(line), nil
}

// closeLUKS encrypts the cleartext of tag name into its container, unless
// the build failed. Filesystems and volumes on the cleartext are built by
// then: their steps come later, so their teardowns ran first.
func (b *Build) closeLUKS(name string) error {
	tag, err := b.State.Tags.Get(name)
	if err != nil || tag.LUKS == nil || tag.LUKS.container == nil {
		return nil
	}
	c, under := tag.LUKS.container, tag.LUKS.Under
	tag.LUKS.container = nil // once only, and the key is dropped
	defer os.Remove(c.HeaderFile)
	defer os.Remove(tag.Image)
	if b.Failed() {
		return nil
	}
	b.Progress("Encrypting %s (%s) into %s", name, sizeText(tag.Size), under.Name)
	src, err := os.Open(tag.Image)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(under.Image, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("encrypting %s: %w", name, err)
	}
	digest, err := c.Encrypt(src, dst, under.Offset, under.Size)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("encrypting %s into %s: %w", name, under.Name, err)
	}
	tag.LUKS.Digest = digest
	return b.recordCleartext(tag)
}

// recordCleartext notes the digest of an encrypted cleartext in the stage
// for --check-reproducible, which compares encrypted areas by it.
func (b *Build) recordCleartext(tag *Tag) error {
	// Only a container on a partition is where its tag's range says in
	// the output; one on an LV is copied to its PVs later.
	if b.Settings.CleartextDigests == "" || tag.LUKS.Under.PartNumber == 0 {
		return nil
	}
	line := fmt.Sprintf("%s %d %d %x\n", tag.LUKS.UUID, tag.LUKS.Under.Offset, tag.LUKS.Under.Size, tag.LUKS.Digest)
	f, err := os.OpenFile(b.Settings.CleartextDigests, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// simDataOffset is the data offset the simulation assumes for a container
// (luksFormat's default, 16 MiB); the real one is read from the header.
const simDataOffset = 16 << 20

// simCryptsetup models the cryptsetup and luks steps: the container's tag
// must be a partition or volume with room for a header and data, the
// cleartext tag is new, a key-file exists on the host.
func simCryptsetup(sm *sim, s *Step) {
	name := s.Str("name")
	if s.Kind.Name == "luks" {
		name = s.Str("tag")
	}
	under, err := sm.tags.Get(s.Str("cryptsetup"))
	switch {
	case err != nil:
	case under.FSType != "":
		err = fmt.Errorf("tag %s already has a %s filesystem; encrypt it before its mkfs step", under.Name, under.FSType)
	case under.Size != 0 && under.Size <= simDataOffset:
		err = fmt.Errorf("tag %s (%s) is too small for a LUKS2 container (its header takes 16 MiB)", under.Name, sizeText(under.Size))
	}
	if err != nil {
		sm.stateErr(s.KeyLine("cryptsetup"), err)
		return
	}
	sm.hostSource(s, "key-file", false)
	if sm.running == yes {
		sm.needTools(s, "cryptsetup")
	}
	tag, err := sm.tags.Add(name)
	if err != nil {
		sm.stateErr(s.Line, err)
		return
	}
	tag.Image, tag.Size = "(cleartext of "+under.Name+")", max(under.Size-simDataOffset, 0)
	tag.LUKS = &LUKSLayer{Name: name, Under: under}
}
