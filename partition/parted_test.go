package partition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// These tests compare this package with the real GNU parted on the machine:
// the same commands are run by MakeLabel/MakePart/SetFlag on one sparse image
// and by `parted -s` on another of the same size, then `sfdisk -J` output is
// compared with only the random identifiers removed.

func needTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("compares with parted and sfdisk; skipped with -short")
	}
	testreq.NeedTools(t, "parted", "sfdisk")
}

type cmd struct {
	kind                  string // "mkpart" or "set"
	ptype, fs, start, end string
	num                   int
	flag                  string
	on                    bool
}

func mk(ptype, fs, start, end string) cmd {
	return cmd{kind: "mkpart", ptype: ptype, fs: fs, start: start, end: end}
}
func set(n int, flag string, on bool) cmd { return cmd{kind: "set", num: n, flag: flag, on: on} }

var testIDs = LabelIDs{
	DiskGUID:     mustGUID("11111111-2222-3333-4444-555555555555"),
	MBRSignature: 0x12345678,
}

// runOurs applies cmds; it returns, per command, whether it failed.
func runOurs(t *testing.T, img string, size int64, label string, cmds []cmd) []error {
	t.Helper()
	if err := CreateImage(img, size); err != nil {
		t.Fatal(err)
	}
	open := func() *Disk {
		d, err := Open(img)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d
	}
	d := open()
	if err := d.MakeLabel(label, testIDs); err != nil {
		t.Fatalf("MakeLabel: %v", err)
	}
	d.Close()
	var errs []error
	for _, c := range cmds {
		d := open() // each step reopens, like the build does
		var err error
		if c.kind == "mkpart" {
			_, err = d.MakePart(c.ptype, c.fs, c.start, c.end)
		} else {
			err = d.SetFlag(c.num, c.flag, c.on)
		}
		d.Close()
		errs = append(errs, err)
	}
	return errs
}

func runParted(t *testing.T, img string, size int64, label string, cmds []cmd) []error {
	t.Helper()
	os.Remove(img)
	if err := CreateImage(img, size); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) error {
		out, err := exec.Command("parted", append([]string{"-s", img}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("parted %s: %v: %s", strings.Join(args, " "), err, filterParted(out))
		}
		return nil
	}
	if err := run("mklabel", label); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for _, c := range cmds {
		if c.kind == "mkpart" {
			errs = append(errs, run("--", "mkpart", c.ptype, c.fs, c.start, c.end))
		} else {
			st := "off"
			if c.on {
				st = "on"
			}
			errs = append(errs, run("--", "set", fmt.Sprint(c.num), c.flag, st))
		}
	}
	return errs
}

func filterParted(out []byte) string {
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.Contains(l, "udevadm") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, " / ")
}

// sfdiskJSON returns `sfdisk -J img` with identifiers and paths removed.
func sfdiskJSON(t *testing.T, img string) map[string]any {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J %s: %v", img, err)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	pt := v["partitiontable"].(map[string]any)
	delete(pt, "id")
	delete(pt, "device")
	if ps, ok := pt["partitions"].([]any); ok {
		for _, p := range ps {
			m := p.(map[string]any)
			delete(m, "uuid")
			m["node"] = filepath.Ext(m["node"].(string) + "") // keep nothing path-specific
			m["node"] = strings.TrimPrefix(m["node"].(string), img)
		}
	}
	return v
}

func sfdiskVerify(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("sfdisk", "-V", img).CombinedOutput()
	if err != nil {
		t.Errorf("sfdisk -V %s: %v\n%s", img, err, out)
	}
}

type compareCase struct {
	name  string
	size  string
	label string
	cmds  []cmd
}

func compareWithParted(t *testing.T, c compareCase) {
	size, err := ParseImageSize(c.size)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours.img"), filepath.Join(dir, "parted.img")
	oe := runOurs(t, ours, size, c.label, c.cmds)
	pe := runParted(t, theirs, size, c.label, c.cmds)
	for i := range c.cmds {
		if (oe[i] == nil) != (pe[i] == nil) {
			t.Errorf("command %d %+v: ours err=%v, parted err=%v", i, c.cmds[i], oe[i], pe[i])
		}
	}
	a, b := sfdiskJSON(t, ours), sfdiskJSON(t, theirs)
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.MarshalIndent(a, "", " ")
		jb, _ := json.MarshalIndent(b, "", " ")
		t.Errorf("sfdisk -J differs\nours:   %s\nparted: %s", ja, jb)
	}
	sfdiskVerify(t, ours)
	// The MBR partition entries (with CHS values) must match byte for byte;
	// for gpt that is the protective MBR.
	ra, rb := readHead(t, ours), readHead(t, theirs)
	if !bytes.Equal(ra[446:512], rb[446:512]) {
		t.Errorf("MBR entries differ:\nours   % x\nparted % x", ra[446:512], rb[446:512])
	}
	if c.label == "gpt" {
		// Header fields other than GUIDs and CRCs must match too.
		ha, hb := append([]byte{}, ra[512:512+92]...), append([]byte{}, rb[512:512+92]...)
		for _, h := range [][]byte{ha, hb} {
			clear(h[16:20])
			clear(h[56:72])
			clear(h[88:92])
		}
		if !bytes.Equal(ha, hb) {
			t.Errorf("GPT headers differ:\nours   % x\nparted % x", ha, hb)
		}
	}
	// Reading back what we wrote must give what sfdisk sees.
	d, err := Open(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pt := a["partitiontable"].(map[string]any)
	ps, _ := pt["partitions"].([]any)
	got := d.Partitions()
	if len(got) != len(ps) {
		t.Fatalf("Partitions() has %d entries, sfdisk %d", len(got), len(ps))
	}
	for i, p := range ps {
		m := p.(map[string]any)
		if int64(m["start"].(float64)) != got[i].StartSector || int64(m["size"].(float64)) != got[i].SizeSectors {
			t.Errorf("partition %d: Partitions() %d+%d, sfdisk %v+%v", got[i].Number, got[i].StartSector, got[i].SizeSectors, m["start"], m["size"])
		}
	}
}

var comparisonCases = []compareCase{
	{"half-half", "4G", "msdos", []cmd{mk("primary", "ext2", "0%", "50%"), mk("primary", "fat32", "50%", "100%")}},
	{"half-half", "4G", "gpt", []cmd{mk("primary", "ext2", "0%", "50%"), mk("primary", "fat32", "50%", "100%")}},
	{"1G-split", "4G", "msdos", []cmd{mk("primary", "ext4", "0%", "1G"), mk("primary", "ext4", "1G", "100%")}},
	{"1G-split", "5G", "gpt", []cmd{mk("primary", "fat32", "0%", "1G"), mk("primary", "ext4", "1G", "100%")}},
	{"raspi", "1500M", "msdos", []cmd{mk("primary", "fat32", "4MiB", "20%"), mk("primary", "ext4", "20%", "100%")}},
	{"raspi", "2000M", "msdos", []cmd{mk("primary", "fat32", "0%", "20%"), mk("primary", "ext2", "20%", "100%")}},
	{"uefi", "4G", "gpt", []cmd{mk("primary", "fat32", "1MiB", "513MiB"), mk("primary", "ext4", "513MiB", "100%"), set(1, "esp", true)}},
	{"75-25", "3G", "msdos", []cmd{mk("primary", "ext4", "0%", "75%"), mk("primary", "linux-swap", "75%", "100%")}},
	{"75-25", "3G", "gpt", []cmd{mk("primary", "ext4", "0%", "75%"), mk("primary", "linux-swap", "75%", "100%")}},
	{"sectors", "100M", "msdos", []cmd{mk("primary", "ext2", "2048s", "-1s")}},
	{"sectors", "100M", "gpt", []cmd{mk("primary", "ext2", "2048s", "-34s")}},
	{"sectors-last", "100M", "gpt", []cmd{mk("primary", "ext2", "2048s", "-1s")}},
	{"bare-MB", "100M", "msdos", []cmd{mk("primary", "ext2", "1", "10"), mk("primary", "ext2", "10", "50"), mk("primary", "fat16", "50", "100")}},
	{"bare-MB", "100M", "gpt", []cmd{mk("primary", "ext2", "1", "10"), mk("primary", "ext2", "10", "50"), mk("primary", "fat16", "50", "100")}},
	{"MB-GB", "5G", "gpt", []cmd{mk("boot", "ext2", "10MB", "500MB"), mk("root", "ext4", "0.5GB", "4GB"), mk("swap", "linux-swap", "4GB", "100%")}},
	{"bios-grub", "4G", "gpt", []cmd{mk("bios", "ext2", "1MiB", "2MiB"), set(1, "bios_grub", true), mk("efi", "fat32", "2MiB", "100MiB"), set(2, "boot", true), mk("root", "ext4", "100MiB", "100%")}},
	{"four-plus-one", "100M", "msdos", []cmd{mk("primary", "ext2", "1MiB", "10MiB"), mk("primary", "ext2", "10MiB", "20MiB"), mk("primary", "ext2", "20MiB", "30MiB"), mk("primary", "ext2", "30MiB", "40MiB"), mk("primary", "ext2", "40MiB", "50MiB")}},
	{"overlap", "100M", "msdos", []cmd{mk("primary", "ext2", "1MiB", "50MiB"), mk("primary", "ext2", "20MiB", "60MiB"), mk("primary", "ext2", "50MiB", "60MiB")}},
	{"overlap", "100M", "gpt", []cmd{mk("primary", "ext2", "1MiB", "50MiB"), mk("primary", "ext2", "20MiB", "60MiB"), mk("primary", "ext2", "30%", "60%")}},
	{"errors", "100M", "gpt", []cmd{mk("primary", "ext2", "10MiB", "5MiB"), mk("primary", "ext2", "1MiB", "100MiB"), mk("primary", "ext2", "1MiB", "200M"), mk("primary", "ext2", "0.5GB", "1GB"), mk("primary", "ext2", "-1s", "-1s"), mk("x", "ext4", "1MiB", "2048KiB"), mk("x", "ext4", "10MiB", "12288kib"), mk("x", "ext4", "12MiB", "14mib")}},
	{"odd-sizes", "2000M", "msdos", []cmd{mk("primary", "ext4", "10M", "1G"), mk("primary", "ext4", "1G", "100%")}},
	{"small-pct", "100M", "msdos", []cmd{mk("primary", "fat32", "0%", "33%"), mk("primary", "ext4", "33%", "66%"), mk("primary", "ext4", "66%", "100%")}},
	{"small-pct", "100M", "gpt", []cmd{mk("primary", "fat32", "0%", "33%"), mk("primary", "ext4", "33%", "66%"), mk("primary", "ext4", "66%", "100%")}},
	{"unaligned-sectors", "100M", "msdos", []cmd{mk("primary", "ext2", "63s", "1000s"), mk("primary", "ext2", "1001s", "5000s"), mk("primary", "ext2", "1s", "20s")}},
	{"fstypes", "100M", "msdos", []cmd{mk("primary", "ntfs", "1MiB", "10MiB"), mk("primary", "hfs+", "10MiB", "20MiB"), mk("primary", "udf", "20MiB", "30MiB"), mk("primary", "freebsd-ufs", "30MiB", "40MiB")}},
	{"fstypes", "100M", "gpt", []cmd{mk("a", "ntfs", "1MiB", "10MiB"), mk("b", "hfs+", "10MiB", "20MiB"), mk("c", "udf", "20MiB", "30MiB"), mk("d", "freebsd-ufs", "30MiB", "40MiB"), mk("e", "FAT16", "40MiB", "50MiB"), mk("f", "Linux-Swap", "50MiB", "60MiB")}},
	{"one-sector", "100M", "msdos", []cmd{mk("primary", "ext2", "2048s", "2048s"), mk("primary", "ext2", "1MiB", "1MiB"), mk("primary", "ext2", "3MiB", "-1MiB")}},
	{"one-sector", "100M", "gpt", []cmd{mk("p", "ext2", "2048s", "2048s"), mk("p", "ext2", "4096s", "4096s"), mk("p", "ext2", "3MiB", "-1MiB")}},
	{"chs-edge", "100M", "msdos", []cmd{mk("primary", "ext2", "130688s", "130815s"), mk("primary", "ext2", "130816s", "130943s"), mk("primary", "ext2", "130944s", "200000s")}},
	{"big", "20G", "msdos", []cmd{mk("primary", "fat32", "0%", "512MiB"), mk("primary", "ext4", "512MiB", "100%"), set(1, "boot", true)}},
	{"big", "20G", "gpt", []cmd{mk("EFI system", "fat32", "0%", "512MiB"), mk("root", "", "512MiB", "100%"), set(1, "esp", true), set(2, "legacy_boot", true)}},
	{"odd-size", "1000001k", "msdos", []cmd{mk("primary", "ext4", "0%", "30%"), mk("primary", "ext4", "30%", "100%")}},
	{"odd-size", "1000001k", "gpt", []cmd{mk("primary", "ext4", "0%", "30%"), mk("primary", "ext4", "30%", "100%")}},
	{"odd-size", "1.3G", "gpt", []cmd{mk("primary", "ext4", "1", "700"), mk("primary", "ext4", "700", "-1")}},
	{"names", "100M", "gpt", []cmd{mk("uboot", "ext2", "8MiB", "16MiB"), mk("a-very-long-partition-name-longer-than-36-chars", "ext2", "16MiB", "20MiB"), mk("Ünïcødé", "ext2", "20MiB", "30MiB")}},
	{"many", "100M", "gpt", []cmd{mk("1", "ext2", "1MiB", "2MiB"), mk("2", "ext2", "2MiB", "3MiB"), mk("3", "ext2", "3MiB", "4MiB"), mk("4", "ext2", "4MiB", "5MiB"), mk("5", "ext2", "5MiB", "6MiB"), mk("6", "ext2", "10MiB", "20MiB")}},
	{"gaps", "100M", "msdos", []cmd{mk("primary", "ext2", "50MiB", "60MiB"), mk("primary", "ext2", "10MiB", "20MiB"), mk("primary", "ext2", "0%", "100%"), mk("primary", "ext2", "20MB", "50MB")}},
	{"gaps", "100M", "gpt", []cmd{mk("p", "ext2", "50MiB", "60MiB"), mk("p", "ext2", "10MiB", "20MiB"), mk("p", "ext2", "0%", "100%"), mk("p", "ext2", "20MB", "50MB"), mk("p", "ext2", "60MB", "100%")}},
}

func TestCompareWithParted(t *testing.T) {
	needTools(t)
	for _, c := range comparisonCases {
		t.Run(c.label+"/"+c.size+"/"+c.name, func(t *testing.T) { compareWithParted(t, c) })
	}
}

func TestFlagsAgainstParted(t *testing.T) {
	needTools(t)
	for _, label := range []string{"msdos", "gpt"} {
		flags := msdosFlags
		if label == "gpt" {
			flags = gptFlags
		}
		for name := range flags {
			c := compareCase{name: name, size: "100M", label: label, cmds: []cmd{
				mk("primary", "ext2", "1", "10"), mk("primary", "fat32", "10", "20"),
				set(1, name, true), set(2, name, true),
			}}
			t.Run(label+"/"+name+"/on", func(t *testing.T) { compareWithParted(t, c) })
			c2 := c
			c2.cmds = append(append([]cmd{}, c.cmds...), set(1, name, false), set(2, name, false))
			t.Run(label+"/"+name+"/off", func(t *testing.T) { compareWithParted(t, c2) })
		}
	}
}

func readHead(t *testing.T, img string) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1024)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContinueAfterParted: parted creates the label and the first commands,
// this package opens that image and carries on (the --image reuse case); the
// result must equal parted doing everything.
func TestContinueAfterParted(t *testing.T) {
	needTools(t)
	for _, c := range comparisonCases {
		if len(c.cmds) < 2 || c.name == "errors" || c.name == "overlap" || c.name == "four-plus-one" {
			continue
		}
		t.Run(c.label+"/"+c.size+"/"+c.name, func(t *testing.T) {
			size, err := ParseImageSize(c.size)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			mixed, all := filepath.Join(dir, "mixed.img"), filepath.Join(dir, "all.img")
			half := len(c.cmds) / 2
			pe := runParted(t, all, size, c.label, c.cmds)
			runParted(t, mixed, size, c.label, c.cmds[:half])
			for i, cm := range c.cmds[half:] {
				d, err := Open(mixed)
				if err != nil {
					t.Fatal(err)
				}
				if cm.kind == "mkpart" {
					_, err = d.MakePart(cm.ptype, cm.fs, cm.start, cm.end)
				} else {
					err = d.SetFlag(cm.num, cm.flag, cm.on)
				}
				d.Close()
				if (err == nil) != (pe[half+i] == nil) {
					t.Errorf("%+v: ours %v, parted %v", cm, err, pe[half+i])
				}
			}
			a, b := sfdiskJSON(t, mixed), sfdiskJSON(t, all)
			pa, pb := a["partitiontable"].(map[string]any), b["partitiontable"].(map[string]any)
			if !reflect.DeepEqual(pa["partitions"], pb["partitions"]) {
				t.Errorf("differs:\nmixed  %v\nparted %v", pa["partitions"], pb["partitions"])
			}
			sfdiskVerify(t, mixed)
			if !bytes.Equal(readHead(t, mixed)[446:512], readHead(t, all)[446:512]) {
				t.Errorf("MBR entries differ")
			}
		})
	}
}

// TestPartedReadsOurs: parted itself must accept what we write (print
// without complaint) and then be able to add a partition to it.
func TestPartedReadsOurs(t *testing.T) {
	needTools(t)
	for _, label := range []string{"msdos", "gpt"} {
		img := filepath.Join(t.TempDir(), "x.img")
		runOurs(t, img, 1<<30, label, []cmd{mk("primary", "fat32", "1MiB", "100MiB"), set(1, "boot", true)})
		out, err := exec.Command("parted", "-s", img, "unit", "s", "print").CombinedOutput()
		if err != nil || strings.Contains(string(out), "Error") || strings.Contains(string(out), "Warning") {
			t.Errorf("%s: parted print: %v\n%s", label, err, out)
		}
		out, err = exec.Command("parted", "-s", img, "--", "mkpart", "primary", "ext4", "100MiB", "100%").CombinedOutput()
		if err != nil {
			t.Errorf("%s: parted mkpart on our table: %v\n%s", label, err, out)
		}
		d, err := Open(img)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d.Partitions()); n != 2 {
			t.Errorf("%s: %d partitions after parted added one", label, n)
		}
		d.Close()
	}
}

// TestFlagOffFollowsFilesystem: like parted, turning a type flag off gives the
// type of the file system found in the partition (FAT here).
func TestFlagOffFollowsFilesystem(t *testing.T) {
	needTools(t)
	testreq.NeedTools(t, "mkfs.fat")
	for _, label := range []string{"msdos", "gpt"} {
		dir := t.TempDir()
		imgs := []string{filepath.Join(dir, "ours.img"), filepath.Join(dir, "parted.img")}
		base := []cmd{mk("primary", "fat32", "1MiB", "65MiB")}
		runOurs(t, imgs[0], 100<<20, label, base)
		runParted(t, imgs[1], 100<<20, label, base)
		for _, img := range imgs {
			if out, err := exec.Command("mkfs.fat", "-F", "32", "--offset=2048", img, "65536").CombinedOutput(); err != nil {
				t.Fatalf("mkfs.fat: %v\n%s", err, out)
			}
		}
		d, err := Open(imgs[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			flag string
			on   bool
		}{{"esp", true}, {"esp", false}, {"lvm", false}, {"hidden", true}} {
			if label == "gpt" && c.flag == "hidden" {
				continue
			}
			if err := d.SetFlag(1, c.flag, c.on); err != nil {
				t.Fatal(err)
			}
			st := "off"
			if c.on {
				st = "on"
			}
			if out, err := exec.Command("parted", "-s", imgs[1], "--", "set", "1", c.flag, st).CombinedOutput(); err != nil {
				t.Fatalf("parted: %v\n%s", err, out)
			}
			a := sfdiskJSON(t, imgs[0])["partitiontable"].(map[string]any)["partitions"]
			b := sfdiskJSON(t, imgs[1])["partitiontable"].(map[string]any)["partitions"]
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s set %s %v: ours %v, parted %v", label, c.flag, c.on, a, b)
			}
		}
		d.Close()
	}
}
