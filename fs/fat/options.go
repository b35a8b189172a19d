package fat

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options controls the filesystem Build writes. The zero value gives what
// `mkfs.fat` with no options gives, with serial number 0000-0000, no label
// and every timestamp at 1980-01-01 00:00:00.
type Options struct {
	// Label is the volume label (vmdb2's `label`, mkfs.fat -n): at most 11
	// printable ASCII characters, not starting with a space and none of
	// *?.,;:/\|+=<>[]". Empty means no label ("NO NAME"). Like mkfs.fat 4.2
	// the case is kept as given, so `LABEL=boot` in an fstab keeps working;
	// upper case is what DOS and Windows expect.
	Label string

	// VolumeID is the volume serial number (mkfs.fat -i). The caller
	// derives it from the build seed; this package uses no randomness.
	VolumeID uint32

	// FATSize forces FAT12, FAT16 or FAT32 (mkfs.fat -F); 0 chooses like
	// mkfs.fat 4.2: FAT32 from 512 MiB up, else whichever of FAT12 and
	// FAT16 gives more clusters.
	FATSize int

	// SectorsPerCluster (mkfs.fat -s): 0 chooses like mkfs.fat, otherwise
	// a power of two from 1 to 128.
	SectorsPerCluster int

	// Time is every timestamp in the filesystem (the caller passes
	// SOURCE_DATE_EPOCH or a fixed time). It is used in UTC.
	Time time.Time

	// ReservedSectors is the minimum number of reserved sectors (mkfs.fat
	// -R); 0 means 32 on FAT32 and 1 otherwise. It is rounded up to a
	// whole cluster, as mkfs.fat does unless alignment is off.
	ReservedSectors int

	// RootEntries is the minimum number of FAT12/16 root directory slots
	// (mkfs.fat -r); 0 means 512. Ignored on FAT32.
	RootEntries int

	// NumFATs is the number of FAT copies (mkfs.fat -f), 1 to 4; 0 means 2.
	NumFATs int

	// NoAlign turns off the alignment of the FATs and the data area to
	// whole clusters (mkfs.fat -a).
	NoAlign bool

	// MediaByte is the media descriptor (mkfs.fat -M): 0 means 0xF8
	// (fixed disk); else 0xF0 or 0xF8 to 0xFF.
	MediaByte byte

	// Heads and SectorsPerTrack are the CHS geometry recorded in the boot
	// sector (mkfs.fat -g heads/sectors); 0 guesses like mkfs.fat. The
	// filesystem is cut to a whole number of tracks unless NoAlign.
	Heads, SectorsPerTrack int

	// DiskOffset is the byte offset of the filesystem from the start of
	// the whole disk, recorded as the boot sector's hidden sectors so that
	// boot code can find the partition. 0 means the offset given to Build,
	// which is right whenever dst is the whole disk image.
	DiskOffset int64
}

// validate checks the ranges of the numeric options and the label.
func (o *Options) validate() error {
	switch o.FATSize {
	case 0, 12, 16, 32:
	default:
		return fmt.Errorf("fat: FAT size %d: must be 12, 16 or 32", o.FATSize)
	}
	if s := o.SectorsPerCluster; s != 0 && (s < 1 || s > 128 || s&(s-1) != 0) {
		return fmt.Errorf("fat: %d sectors per cluster: must be a power of two from 1 to 128", s)
	}
	if o.ReservedSectors < 0 || o.ReservedSectors > 0xFFFF {
		return fmt.Errorf("fat: %d reserved sectors: must be 1 to 65535", o.ReservedSectors)
	}
	if o.RootEntries < 0 || (o.RootEntries != 0 && (o.RootEntries < 16 || o.RootEntries > 32768)) {
		return fmt.Errorf("fat: %d root directory entries: must be 16 to 32768", o.RootEntries)
	}
	if o.NumFATs < 0 || o.NumFATs > 4 {
		return fmt.Errorf("fat: %d FATs: must be 1 to 4", o.NumFATs)
	}
	if m := o.MediaByte; m != 0 && m != 0xF0 && m < 0xF8 {
		return fmt.Errorf("fat: media byte %#02x: must be 0xF0 or 0xF8 to 0xFF", m)
	}
	if o.Heads < 0 || o.Heads > 0xFFFF || o.SectorsPerTrack < 0 || o.SectorsPerTrack > 0xFFFF ||
		(o.Heads == 0) != (o.SectorsPerTrack == 0) {
		return fmt.Errorf("fat: geometry %d heads / %d sectors per track: both must be 1 to 65535", o.Heads, o.SectorsPerTrack)
	}
	if o.DiskOffset < 0 || o.DiskOffset%sectorSize != 0 {
		return fmt.Errorf("fat: disk offset %d is not a whole number of 512-byte sectors", o.DiskOffset)
	}
	if _, err := labelBytes(o.Label); err != nil {
		return err
	}
	return nil
}

// labelBytes turns a label into the 11 bytes of the boot sector and the
// volume label entry, checking it the way mkfs.fat 4.2 does. An empty label
// gives "NO NAME    ".
func labelBytes(label string) ([11]byte, error) {
	var b [11]byte
	if len(label) > 11 {
		return b, fmt.Errorf("fat: label %q is longer than 11 characters", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c < 0x20 || c == 0x7F:
			return b, fmt.Errorf("fat: label %q contains a control character", label)
		case c >= 0x80:
			return b, fmt.Errorf("fat: label %q: only ASCII characters are supported in FAT labels", label)
		case strings.IndexByte(`*?.,;:/\|+=<>[]"`, c) >= 0:
			return b, fmt.Errorf("fat: label %q contains %q; FAT labels may not contain any of *?.,;:/\\|+=<>[]\"", label, c)
		}
	}
	if strings.HasPrefix(label, " ") {
		return b, fmt.Errorf("fat: label %q starts with a space", label)
	}
	if strings.TrimRight(label, " ") == "" {
		label = "NO NAME"
	}
	copy(b[:], label)
	for i := len(label); i < 11; i++ {
		b[i] = ' '
	}
	return b, nil
}

// ParseMkfsOptions applies the mkfs.fat command-line options of a vmdb2
// `mkfs: vfat` step's `options` key (already split into arguments) on top
// of base and returns the result. Later options win, as with mkfs.fat.
//
// Understood: -F 12|16|32, -s N, -S 512, -n LABEL, -i HEX, -R N, -r N,
// -f N, -a, -M MEDIA, -g HEADS/SECTORS, --invariant (serial 1234ABCD and
// time 2015-03-14 09:26:53 UTC, like mkfs.fat), and the harmless -v, -I
// and --codepage=N. Option letters may be grouped (-aI) and values may be
// attached (-F32). Empty arguments (from double spaces) are skipped.
// Anything else, in particular options that make no sense when building
// into a partition of an image (-C, -c, -l, --offset, -h, -b, -m, -A, -D,
// --mbr, -S other than 512, a device or block count) is an error naming it.
func ParseMkfsOptions(base Options, args []string) (Options, error) {
	o := base
	for i := 0; i < len(args); i++ {
		arg := args[i]
		var err error
		switch {
		case arg == "":
			continue
		case strings.HasPrefix(arg, "--"):
			i, err = longOption(&o, args, i)
		case !strings.HasPrefix(arg, "-") || arg == "-":
			err = fmt.Errorf("unexpected argument %q in mkfs.fat options (the device and size come from the partition)", arg)
		default:
			i, err = shortOptions(&o, args, i)
		}
		if err != nil {
			return base, err
		}
	}
	if err := o.validate(); err != nil {
		return base, err
	}
	return o, nil
}

// longOption applies the --option at args[i] and returns the index of
// the last argument it used.
func longOption(o *Options, args []string, i int) (int, error) {
	arg := args[i]
	name, _, _ := strings.Cut(arg, "=")
	switch name {
	case "--invariant":
		if arg != name {
			return i, fmt.Errorf("mkfs.fat option %s takes no value", name)
		}
		o.VolumeID = 0x1234ABCD
		o.Time = time.Unix(1426325213, 0).UTC()
	case "--codepage":
		if arg == name {
			if i+1 >= len(args) {
				return i, fmt.Errorf("mkfs.fat option --codepage needs a value")
			}
			i++
		}
		// Labels are ASCII only, so the code page does not matter.
	default:
		return i, fmt.Errorf("mkfs.fat option %q is not supported when building a FAT filesystem in Go", arg)
	}
	return i, nil
}

// shortOptions applies the letters of the -xyz argument at args[i]: flags,
// then at most one option with a value (the rest of the argument or the
// next one). It returns the index of the last argument it used.
func shortOptions(o *Options, args []string, i int) (int, error) {
	const withValue = "FsSnirRfMg"
	arg := args[i]
	for j := 1; j < len(arg); j++ {
		c := arg[j]
		if strings.IndexByte(withValue, c) < 0 {
			switch c {
			case 'a':
				o.NoAlign = true
			case 'v', 'I':
				// verbosity, and the whole-disk safety check
			default:
				return i, fmt.Errorf("mkfs.fat option -%c is not supported when building a FAT filesystem in Go", c)
			}
			continue
		}
		val := arg[j+1:]
		if val == "" {
			if i+1 >= len(args) {
				return i, fmt.Errorf("mkfs.fat option -%c needs a value", c)
			}
			i++
			val = args[i]
		}
		return i, applyValue(o, c, val)
	}
	return i, nil
}

// applyValue sets the option named by letter c from its value.
func applyValue(o *Options, c byte, val string) error {
	num := func(lo, hi int64) (int, error) {
		n, err := strconv.ParseInt(val, 0, 64)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("mkfs.fat option -%c %q: expected a number from %d to %d", c, val, lo, hi)
		}
		return int(n), nil
	}
	var err error
	switch c {
	case 'F':
		n, e := strconv.ParseInt(val, 0, 64)
		if e != nil || (n != 12 && n != 16 && n != 32) {
			return fmt.Errorf("mkfs.fat option -F %q: FAT size must be 12, 16 or 32", val)
		}
		o.FATSize = int(n)
	case 's':
		var n int
		if n, err = num(1, 128); err == nil {
			if n&(n-1) != 0 {
				return fmt.Errorf("mkfs.fat option -s %q: sectors per cluster must be a power of two from 1 to 128", val)
			}
			o.SectorsPerCluster = n
		}
	case 'S':
		if n, e := strconv.ParseInt(val, 0, 64); e != nil || n != sectorSize {
			return fmt.Errorf("mkfs.fat option -S %q: only 512-byte logical sectors are supported", val)
		}
	case 'n':
		if _, err := labelBytes(val); err != nil {
			return err
		}
		o.Label = val
	case 'i':
		hex := strings.TrimPrefix(strings.TrimPrefix(val, "0x"), "0X")
		n, e := strconv.ParseUint(hex, 16, 32)
		if e != nil || hex == "" || strings.HasPrefix(hex, "+") {
			return fmt.Errorf("mkfs.fat option -i %q: the volume ID must be a hexadecimal number of at most 32 bits", val)
		}
		o.VolumeID = uint32(n)
	case 'R':
		o.ReservedSectors, err = num(1, 0xFFFF)
	case 'r':
		o.RootEntries, err = num(16, 32768)
	case 'f':
		o.NumFATs, err = num(1, 4)
	case 'M':
		var n int
		if n, err = num(0, 0xFF); err == nil {
			if n != 0xF0 && n < 0xF8 {
				return fmt.Errorf("mkfs.fat option -M %q: the media byte must be 0xF0 or 0xF8 to 0xFF", val)
			}
			o.MediaByte = byte(n)
		}
	case 'g':
		h, s, ok := strings.Cut(val, "/")
		hn, e1 := strconv.ParseUint(h, 0, 16)
		sn, e2 := strconv.ParseUint(s, 0, 16)
		if !ok || e1 != nil || e2 != nil || hn == 0 || sn == 0 {
			return fmt.Errorf("mkfs.fat option -g %q: expected HEADS/SECTORS_PER_TRACK", val)
		}
		o.Heads, o.SectorsPerTrack = int(hn), int(sn)
	}
	return err
}
