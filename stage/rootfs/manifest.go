package rootfs

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Device is one device node that could not be created in the stage.
type Device struct {
	// Path is the node's absolute path inside the filesystem tree,
	// e.g. "/dev/null".
	Path string `json:"path"`
	// Type is "c" for a character device, "b" for a block device.
	Type string `json:"type"`
	// Major and Minor are the device numbers.
	Major uint32 `json:"major"`
	Minor uint32 `json:"minor"`
	// Mode is the permission bits (with setuid, setgid and sticky) as an
	// octal string, e.g. "0666".
	Mode string `json:"mode"`
	// UID and GID are numeric owners as inside the image.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Mtime is the modification time in seconds since the epoch.
	Mtime int64 `json:"mtime"`
}

// Manifest is the device manifest file: the device nodes of a tree that
// exist only on paper because the stage was unpacked in an unprivileged user
// namespace, where mknod is refused.
//
// It is a JSON document, written with one device per line and sorted by
// path:
//
//	{"version":1,"devices":[
//	{"path":"/dev/console","type":"c","major":5,"minor":1,"mode":"0600","uid":0,"gid":0,"mtime":1700000000},
//	{"path":"/dev/null","type":"c","major":1,"minor":3,"mode":"0666","uid":0,"gid":0,"mtime":1700000000}
//	]}
//
// A debugfs script adding them to an ext4 image is, per device:
// `cd DIR`, `mknod NAME c MAJOR MINOR`, `sif NAME mode 020666` (S_IFCHR or
// S_IFBLK | perm), `sif NAME uid U`, `sif NAME gid G`, `sif NAME mtime T`.
// See [Device.InodeMode].
type Manifest struct {
	Version int      `json:"version"`
	Devices []Device `json:"devices"`
}

// manifestVersion is the only version there is.
const manifestVersion = 1

// Perm returns the permission bits of d.Mode.
func (d Device) Perm() (uint32, error) {
	m, err := strconv.ParseUint(d.Mode, 8, 32)
	if err != nil || m&^0o7777 != 0 {
		return 0, fmt.Errorf("device %s: bad mode %q (want octal permission bits such as \"0666\")", d.Path, d.Mode)
	}
	return uint32(m), nil
}

// InodeMode returns the full st_mode of the node (file type and
// permission bits), as debugfs's `sif NAME mode` wants it.
func (d Device) InodeMode() (uint32, error) {
	p, err := d.Perm()
	if err != nil {
		return 0, err
	}
	switch d.Type {
	case "c":
		return 0o020000 | p, nil
	case "b":
		return 0o060000 | p, nil
	}
	return 0, fmt.Errorf("device %s: bad type %q (want \"c\" or \"b\")", d.Path, d.Type)
}

func (d Device) check() error {
	if _, err := d.InodeMode(); err != nil {
		return err
	}
	if !strings.HasPrefix(d.Path, "/") || d.Path == "/" || path.Clean(d.Path) != d.Path {
		return fmt.Errorf("device %q: path must be absolute and clean", d.Path)
	}
	return nil
}

func (d Device) mtime() time.Time { return time.Unix(d.Mtime, 0) }

// ReadManifest reads a device manifest. A missing file is an empty
// manifest.
func ReadManifest(file string) ([]Device, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseManifest(b, file)
}

func parseManifest(b []byte, file string) ([]Device, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("device manifest %s: %v", file, err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("device manifest %s: version %d, want %d", file, m.Version, manifestVersion)
	}
	for _, d := range m.Devices {
		if err := d.check(); err != nil {
			return nil, fmt.Errorf("device manifest %s: %v", file, err)
		}
	}
	return m.Devices, nil
}

// WriteManifest writes devs, sorted by path, to file (atomically, through a
// temporary file in the same directory).
func WriteManifest(file string, devs []Device) error {
	b, err := marshalManifest(devs)
	if err != nil {
		return fmt.Errorf("device manifest %s: %v", file, err)
	}
	return writeAtomic(file, b)
}

func marshalManifest(devs []Device) ([]byte, error) {
	devs = append([]Device(nil), devs...)
	sort.Slice(devs, func(i, j int) bool { return devs[i].Path < devs[j].Path })
	var b strings.Builder
	b.WriteString(`{"version":1,"devices":[`)
	for i, d := range devs {
		if err := d.check(); err != nil {
			return nil, err
		}
		line, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		b.Write(line)
	}
	b.WriteString("\n]}\n")
	return []byte(b.String()), nil
}

func writeAtomic(file string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
