package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sfdiskTable is `sfdisk -J` without the identifiers a build chooses.
func sfdiskTable(t *testing.T, img string) any {
	t.Helper()
	out, err := exec.Command(sbin("sfdisk"), "-J", img).Output()
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
	for _, p := range pt["partitions"].([]any) {
		m := p.(map[string]any)
		delete(m, "uuid")
		m["node"] = filepath.Base(m["node"].(string))[len(filepath.Base(img)):]
	}
	return pt
}

// TestPartitionsLikeParted builds images through the binary and compares
// their tables with the same commands run by parted.
func TestPartitionsLikeParted(t *testing.T) {
	checkTools(t, "parted", "sfdisk")
	cases := []struct {
		label, size string
		parts       [][4]string // type, fs-type, start, end
		flags       [][2]string // partition tag index (1-based), flag
	}{
		{"msdos", "4G", [][4]string{{"primary", "ext2", "0%", "50%"}}, [][2]string{{"1", "boot"}}},
		{"gpt", "4G", [][4]string{{"primary", "fat32", "0%", "1G"}, {"primary", "ext4", "1G", "100%"}}, [][2]string{{"1", "esp"}}},
		{"msdos", "3G", [][4]string{{"primary", "fat32", "4MiB", "20%"}, {"primary", "ext4", "20%", "100%"}}, nil},
		{"gpt", "2000M", [][4]string{{"primary", "ext2", "1MiB", "2MiB"}, {"primary", "fat32", "2MiB", "513MiB"}, {"primary", "ext4", "513MiB", "100%"}}, [][2]string{{"1", "bios_grub"}, {"2", "esp"}}},
		{"msdos", "5G", [][4]string{{"primary", "ext2", "0%", "75%"}, {"primary", "ext2", "75%", "-1s"}}, nil},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir := t.TempDir()
			var spec strings.Builder
			fmt.Fprintf(&spec, "steps:\n- mkimg: \"{{ output }}\"\n  size: %s\n- mklabel: %s\n  device: \"{{ output }}\"\n", c.size, c.label)
			ref := filepath.Join(dir, "parted.img")
			if err := os.WriteFile(ref, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(args ...string) {
				if out, err := exec.Command(sbin("parted"), append([]string{"-s", ref}, args...)...).CombinedOutput(); err != nil {
					t.Fatalf("parted %v: %v\n%s", args, err, out)
				}
			}
			if out, err := exec.Command("truncate", "-s", c.size, ref).CombinedOutput(); err != nil {
				t.Fatalf("truncate: %v %s", err, out)
			}
			run("mklabel", c.label)
			for n, p := range c.parts {
				fmt.Fprintf(&spec, "- mkpart: %s\n  device: \"{{ output }}\"\n  fs-type: %s\n  start: %s\n  end: %q\n  tag: p%d\n", p[0], p[1], p[2], p[3], n+1)
				run("--", "mkpart", p[0], p[1], p[2], p[3])
			}
			for _, f := range c.flags {
				fmt.Fprintf(&spec, "- set_part_flag: \"{{ output }}\"\n  tag: p%s\n  flag: %s\n", f[0], f[1])
				run("--", "set", f[0], f[1], "on")
			}
			os.WriteFile(filepath.Join(dir, "spec.vmdb"), []byte(spec.String()), 0o644)
			r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "ours.img")
			if r.code != 0 {
				t.Fatalf("build failed: %s\n%s", r.stderr, spec.String())
			}
			got, want := sfdiskTable(t, filepath.Join(dir, "ours.img")), sfdiskTable(t, ref)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("tables differ\nours:   %v\nparted: %v", got, want)
			}
		})
	}
}
