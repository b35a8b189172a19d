package fat

import (
	"strings"
	"testing"
	"time"
)

func short(s [11]byte) string {
	base := strings.TrimRight(string(s[:8]), " ")
	ext := strings.TrimRight(string(s[8:]), " ")
	if ext == "" {
		return base
	}
	return base + "." + ext
}

func TestExactShortName(t *testing.T) {
	for name, want := range map[string]bool{
		"README.TXT": true, "A": true, "KERNEL8.IMG": true, "BOOTX64.EFI": true, "A~1.B": true,
		"FIXUP4CD.DAT": true,
		"readme.txt":   false, "Readme.TXT": false, "TOOLONGNAME": false, "A.TOOL": false,
		"A.B.C": false, "A B": false, ".X": false, "X.": false, "A+B": false, "É": false,
		"CONFIG.TXT": true, "12345678.123": true, "123456789": false,
	} {
		_, got := exactShortName(name)
		if got != want {
			t.Errorf("exactShortName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestGeneratedShortNames(t *testing.T) {
	n := newShortNamer()
	n.reserve([11]byte{'L', 'O', 'N', 'G', 'F', 'I', '~', '3', 'T', 'X', 'T'})
	var got []string
	names := []string{"readme.txt", "Readme.Txt"}
	for i := 1; i <= 12; i++ {
		names = append(names, "Long File Name "+strings.Repeat("x", i%2)+".txt")
	}
	names = append(names, ".bashrc", "my.file.tar.gz", "with space", "unicodé.txt", "x+y=z[1];a,b.TXT",
		"...", "a.longext", "abcdefgh.ij", "abcdefghi", "ABCDEFGH.TXTX", "名前", "cmdline.txt", "cmdline.txt.bak")
	for _, name := range names {
		s, err := n.generate(name)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, short(s))
	}
	want := []string{"README.TXT", "README~1.TXT",
		"LONGFI~1.TXT", "LONGFI~2.TXT", "LONGFI~4.TXT", "LONGFI~5.TXT", "LONGFI~6.TXT", "LONGFI~7.TXT",
		"LONGFI~8.TXT", "LONGFI~9.TXT", "LONGF~10.TXT", "LONGF~11.TXT", "LONGF~12.TXT", "LONGF~13.TXT",
		"BASHRC~1", "MYFILE~1.GZ", "WITHSP~1", "UNICOD~1.TXT", "X_Y_Z_~1.TXT",
		"_~1", "A~1.LON", "ABCDEFGH.IJ", "ABCDEF~1", "ABCDEF~1.TXT", "__~1", "CMDLINE.TXT", "CMDLIN~1.BAK"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("short names:\n got  %v\n want %v", got, want)
	}
}

func TestLFN(t *testing.T) {
	// Values worked out by hand (and with Python) from the rule in
	// Microsoft's FAT specification: rotate right, add the next byte.
	for name, want := range map[string]byte{"LONGFI~1.TXT": 0xD4, "README.TXT": 0x73} {
		s, _ := exactShortName(name)
		if got := lfnChecksum(s); got != want {
			t.Errorf("lfnChecksum(%s) = %#x, want %#x", name, got, want)
		}
	}

	for _, c := range []struct {
		name  string
		slots int
	}{{"a", 1}, {"thirteen_char", 1}, {"fourteen_chars", 2}, {strings.Repeat("x", 26), 2}, {strings.Repeat("x", 255), 20}, {"名前", 1}, {"😀", 1}} {
		if got := lfnSlots(c.name); got != c.slots {
			t.Errorf("lfnSlots(%q) = %d, want %d", c.name, got, c.slots)
		}
		e := appendLFN(nil, c.name, 0x42)
		if len(e) != c.slots*32 {
			t.Fatalf("%q: %d bytes of entries", c.name, len(e))
		}
		if e[0] != byte(0x40|c.slots) || e[len(e)-32]&0x3F != 1 {
			t.Errorf("%q: sequence numbers %#x .. %#x", c.name, e[0], e[len(e)-32])
		}
		// Reassemble the name from the entries (last entry first on disk).
		var units []uint16
		for k := c.slots - 1; k >= 0; k-- {
			ent := e[k*32 : k*32+32]
			if ent[11] != 0x0F || ent[13] != 0x42 || ent[12] != 0 || ent[26] != 0 || ent[27] != 0 {
				t.Errorf("%q: entry %d: attr %#x sum %#x", c.name, k, ent[11], ent[13])
			}
			for _, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				units = append(units, uint16(ent[off])|uint16(ent[off+1])<<8)
			}
		}
		var name []rune
		terminated := false
		for i, u := range units {
			if u == 0 {
				terminated = true
				for _, rest := range units[i+1:] {
					if rest != 0xFFFF {
						t.Errorf("%q: padding %#x after the terminator", c.name, rest)
					}
				}
				break
			}
			name = append(name, rune(u))
		}
		if !terminated && len(units) != len(utf16Len(c.name)) {
			t.Errorf("%q: no terminator", c.name)
		}
		if c.name != "😀" && string(name) != c.name {
			t.Errorf("reassembled %q, want %q", string(name), c.name)
		}
	}
}

func utf16Len(s string) []struct{} {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return make([]struct{}, n)
}

func TestCheckLongName(t *testing.T) {
	for name, bad := range map[string]bool{
		"ok name.txt": false, "名前": false, " leading space": false, "a;b,c=d+e[f]": false,
		"a:b": true, "a*b": true, "a?b": true, `a"b`: true, "a<b": true, "a>b": true, "a|b": true, `a\b`: true,
		"tab\there": true, "dot.": true, "space ": true, strings.Repeat("a", 255): false, strings.Repeat("a", 256): true,
		string([]byte{0xff, 0xfe}): true,
	} {
		if err := checkLongName(name); (err != nil) != bad {
			t.Errorf("checkLongName(%q) = %v", name, err)
		}
	}
}

func TestFATTime(t *testing.T) {
	for _, c := range []struct {
		t                  time.Time
		date, time, tenths uint16
	}{
		{time.Time{}, 1<<5 | 1, 0, 0},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 1<<5 | 1, 0, 0},
		{time.Date(2023, 11, 14, 22, 13, 21, 500000000, time.UTC), 43<<9 | 11<<5 | 14, 22<<11 | 13<<5 | 10, 150},
		{time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199},
		// A zone other than UTC is converted.
		{time.Date(2000, 1, 1, 1, 0, 0, 0, time.FixedZone("x", 3600)), 20<<9 | 1<<5 | 1, 0, 0},
	} {
		s := fatTime(c.t)
		if s.date != c.date || s.time != c.time || uint16(s.tenths) != c.tenths {
			t.Errorf("fatTime(%v) = %#x %#x %d, want %#x %#x %d", c.t, s.date, s.time, s.tenths, c.date, c.time, c.tenths)
		}
	}
}

func TestParseMkfsOptions(t *testing.T) {
	base := Options{Label: "RASPIFIRM", VolumeID: 7}
	o, err := ParseMkfsOptions(base, strings.Split("-F 32  -s 4 -n ESP -i 0xdeadBEEF -R 8 -r 224 -f 1 -aI -v -S 512 -M 0xf0 -g 64/32 --codepage=850", " "))
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Label: "ESP", VolumeID: 0xDEADBEEF, FATSize: 32, SectorsPerCluster: 4, ReservedSectors: 8, RootEntries: 224,
		NumFATs: 1, NoAlign: true, MediaByte: 0xF0, Heads: 64, SectorsPerTrack: 32}
	if o != want {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	if o, err := ParseMkfsOptions(base, []string{"-F32", "-s2", "-iABCD"}); err != nil || o.FATSize != 32 || o.SectorsPerCluster != 2 || o.VolumeID != 0xABCD || o.Label != "RASPIFIRM" {
		t.Errorf("attached values: %+v, %v", o, err)
	}
	if o, err := ParseMkfsOptions(base, []string{"--invariant"}); err != nil || o.VolumeID != 0x1234ABCD || o.Time.Unix() != 1426325213 {
		t.Errorf("--invariant: %+v, %v", o, err)
	}
	if o, err := ParseMkfsOptions(base, nil); err != nil || o != base {
		t.Errorf("no options: %+v, %v", o, err)
	}
	for _, c := range []struct {
		args string
		want string
	}{
		{"-F 64", "FAT size must be 12, 16 or 32"},
		{"-F", "needs a value"},
		{"-s 3", "power of two"},
		{"-s 256", "-s"},
		{"-S 4096", "only 512-byte"},
		{"-n a.b", "label"},
		{"-n TOOLONGLABEL", "longer than 11"},
		{"-i xyz", "hexadecimal"},
		{"-i 123456789", "hexadecimal"},
		{"-C", "-C is not supported"},
		{"-c", "-c is not supported"},
		{"-h 2048", "-h is not supported"},
		{"--offset=2048", `"--offset=2048" is not supported`},
		{"--mbr", "not supported"},
		{"/dev/sda1", "unexpected argument"},
		{"-M 0x12", "media byte"},
		{"-g 12", "HEADS/SECTORS"},
		{"-R 0", "-R"},
		{"-f 5", "-f"},
		{"-r 8", "-r"},
		{"-O ^64bit", "-O is not supported"},
	} {
		o, err := ParseMkfsOptions(base, strings.Split(c.args, " "))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseMkfsOptions(%q) = %v, want an error containing %q", c.args, err, c.want)
		}
		if o != base {
			t.Errorf("ParseMkfsOptions(%q) changed the options on error", c.args)
		}
	}
}

func TestLabel(t *testing.T) {
	for label, want := range map[string]string{"": "NO NAME    ", "EFI": "EFI        ", "boot": "boot       ", "EFI SYSTEM": "EFI SYSTEM ", "RASPIFIRM": "RASPIFIRM  "} {
		b, err := labelBytes(label)
		if err != nil || string(b[:]) != want {
			t.Errorf("labelBytes(%q) = %q, %v", label, b, err)
		}
	}
	for _, bad := range []string{" X", "A*", "TWELVE CHARS", "é", "a\tb", "A.B"} {
		if _, err := labelBytes(bad); err == nil {
			t.Errorf("labelBytes(%q) accepted", bad)
		}
	}
}

// FuzzShortNames feeds arbitrary names through the name checks and the
// short-name generator: no panics, and every generated name is unique and
// made of valid short-name characters.
func FuzzShortNames(f *testing.F) {
	for _, s := range []string{"Long File Name 1.txt", ".bashrc", "a.b.c", "名前.txt", "...", "x+y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkLongName(name) != nil {
			return
		}
		n := newShortNamer()
		seen := map[[11]byte]bool{}
		for i := 0; i < 12; i++ {
			s, err := n.generate(name)
			if err != nil {
				t.Fatal(err)
			}
			if seen[s] {
				t.Fatalf("%q: duplicate short name %q", name, s)
			}
			seen[s] = true
			for _, c := range s {
				if c != ' ' && !shortChar(c) {
					t.Fatalf("%q: short name %q has %q", name, s, c)
				}
			}
			if s[0] == ' ' {
				t.Fatalf("%q: short name %q starts with a space", name, s)
			}
		}
	})
}

// FuzzOptions feeds arbitrary mkfs.fat options and sizes to the parser and
// the geometry: errors are fine, panics and invalid layouts are not.
func FuzzOptions(f *testing.F) {
	f.Add("-F 32 -s 4 -n EFI", int64(64<<20))
	f.Add("-a -R 7 -r 16 -f 1", int64(3<<20))
	f.Add("-g 1/1 -M 0xf0", int64(100000))
	f.Fuzz(func(t *testing.T, args string, size int64) {
		o, err := ParseMkfsOptions(Options{}, strings.Split(args, " "))
		if err != nil {
			return
		}
		g, err := ComputeGeometry(size, o)
		if err != nil {
			return
		}
		if err := g.check(); err != nil {
			t.Fatalf("%q %d: %v", args, size, err)
		}
		if uint64(g.Clusters)+2 > g.FATEntries() {
			t.Fatalf("%q %d: FAT too small", args, size)
		}
	})
}
