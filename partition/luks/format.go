package luks

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
)

// DefaultOptions are the luksFormat options a container gets unless the
// spec's options override them. luksFormat would benchmark the PBKDF on the
// build host (fast, with plenty of memory), but the target unlocks it: a
// fixed argon2id cost of 64 MiB, 2 threads and 4 passes unlocks in about a
// second on a small machine and fits a 512 MiB one. Sector size 512 suits
// every filesystem block size.
var DefaultOptions = []string{
	"--cipher", "aes-xts-plain64", "--key-size", "512",
	"--pbkdf", "argon2id", "--pbkdf-memory", "65536", "--pbkdf-parallel", "2", "--pbkdf-force-iterations", "4",
	"--sector-size", "512",
}

// Spec says how to format one container.
type Spec struct {
	// Size is the container's size in bytes (header and data).
	Size int64
	// Passphrase is what unlocks key slot 0; used as given, every byte.
	Passphrase []byte
	// UUID is the header's UUID.
	UUID string
	// Options are extra luksFormat options (the spec's), after DefaultOptions.
	Options []string
	// Dir is a private directory (0700) for the key and header files.
	Dir string
	// Run runs cryptsetup.
	Run fstool.Runner
}

// Container is a formatted header and the volume key its data is
// encrypted with. The key is kept in memory only.
type Container struct {
	Layout
	// HeaderFile holds the header: the first DataOffset bytes of the
	// container.
	HeaderFile string
	volumeKey  []byte
}

// Format runs luksFormat on a scratch file in spec.Dir with a random
// volume key, and returns the container it describes.
func Format(ctx context.Context, spec Spec) (*Container, error) {
	if len(spec.Passphrase) == 0 {
		return nil, errors.New("the passphrase is empty")
	}
	if err := CheckOptions(spec.Options); err != nil {
		return nil, err
	}
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("making a volume key: %w", err)
	}
	keyFile, passFile := filepath.Join(spec.Dir, "volume-key"), filepath.Join(spec.Dir, "passphrase")
	header := filepath.Join(spec.Dir, "header")
	defer os.Remove(keyFile)
	defer os.Remove(passFile)
	if err := writeSecret(keyFile, key); err != nil {
		return nil, err
	}
	if err := writeSecret(passFile, spec.Passphrase); err != nil {
		return nil, err
	}
	if err := sparseFile(header, spec.Size); err != nil {
		return nil, err
	}
	args := []string{"cryptsetup", "luksFormat", "--batch-mode", "--disable-locks", "--type", "luks2",
		"--volume-key-file", keyFile, "--key-file", passFile}
	if !hasOption(spec.Options, "--uuid") {
		args = append(args, "--uuid", spec.UUID)
	}
	args = append(append(append(args, DefaultOptions...), spec.Options...), header)
	var out bytes.Buffer
	if err := spec.Run(ctx, fstool.Command{Args: args, Stdout: &out, Stderr: &out}); err != nil {
		os.Remove(header)
		return nil, fmt.Errorf("cryptsetup luksFormat: %w: %s", err, strings.TrimSpace(out.String()))
	}
	layout, err := readLayoutFile(header)
	if err == nil && layout.Cipher != XTSCipher {
		err = fmt.Errorf("cipher %s: only %s is encrypted offline", layout.Cipher, XTSCipher)
	}
	if err == nil && layout.DataOffset >= spec.Size {
		err = fmt.Errorf("the container (%d bytes) has no room for data after its %d-byte header", spec.Size, layout.DataOffset)
	}
	if err != nil {
		os.Remove(header)
		return nil, err
	}
	return &Container{Layout: layout, HeaderFile: header, volumeKey: key}, nil
}

// DataSize is the size of the cleartext a container of size bytes holds.
func (c *Container) DataSize(size int64) int64 {
	n := size - c.DataOffset
	return n - n%int64(c.SectorSize)
}

func writeSecret(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// refusedOptions are luksFormat options that cannot work here: what needs
// device-mapper (integrity), what moves the header or the key elsewhere,
// and what this package sets itself.
var refusedOptions = map[string]string{
	"--integrity":                "integrity protection needs dm-integrity, which an offline build cannot write",
	"--integrity-no-wipe":        "integrity protection needs dm-integrity, which an offline build cannot write",
	"--integrity-legacy-padding": "integrity protection needs dm-integrity, which an offline build cannot write",
	"--header":                   "a detached header is not supported",
	"--type":                     "the container is always LUKS2",
	"-M":                         "the container is always LUKS2",
	"--volume-key-file":          "the volume key is random and made by the build",
	"--master-key-file":          "the volume key is random and made by the build",
	"--key-file":                 "the passphrase comes from the step's password, key-file or key-cmd",
	"-d":                         "the passphrase comes from the step's password, key-file or key-cmd",
	"--cipher":                   "only aes-xts-plain64 is encrypted offline (the default)",
	"-c":                         "only aes-xts-plain64 is encrypted offline (the default)",
}

// CheckOptions refuses luksFormat options that cannot work offline.
func CheckOptions(opts []string) error {
	for i, o := range opts {
		name, value, hasValue := strings.Cut(o, "=")
		if len(o) > 2 && o[0] == '-' && o[1] != '-' {
			// A short option with its value attached (-caes-cbc-plain),
			// which cryptsetup's option parser takes as -c aes-cbc-plain.
			name, value, hasValue = o[:2], o[2:], true
		}
		if !hasValue && i+1 < len(opts) {
			value = opts[i+1]
		}
		why, bad := refusedOptions[name]
		if !bad || ((name == "--cipher" || name == "-c") && value == XTSCipher) {
			continue
		}
		return fmt.Errorf("luksFormat option %s: %s", o, why)
	}
	return nil
}

// hasOption says whether opts set the option name.
func hasOption(opts []string, name string) bool {
	for _, o := range opts {
		if o == name || strings.HasPrefix(o, name+"=") {
			return true
		}
	}
	return false
}
