package steps

import "testing"

// TestFstabText: vmdb2 0.41's lines (defaults, sorted by mount point, a
// parent before what is mounted in it) by default, 0.26's (errors=remount-ro,
// tag order) with Compat026; unmounted tags (swap) are left out.
func TestFstabText(t *testing.T) {
	tags := []*Tag{
		{Name: "efi", Mounted: true, MountPoint: "/boot/efi", FSType: "vfat", UUIDText: "AAAA-BBBB"},
		{Name: "swap", FSType: "swap", UUIDText: "5555"},
		{Name: "var", Mounted: true, MountPoint: "/var", FSType: "ext4", UUIDText: "3333"},
		{Name: "boot", Mounted: true, MountPoint: "/boot", FSType: "ext2", UUIDText: "2222"},
		{Name: "root", Mounted: true, MountPoint: "/", FSType: "ext4", UUIDText: "1111"},
	}
	got, err := fstabText(tags, false)
	want := "UUID=1111 / ext4 defaults 0 1\n" +
		"UUID=2222 /boot ext2 defaults 0 1\n" +
		"UUID=AAAA-BBBB /boot/efi vfat defaults 0 1\n" +
		"UUID=3333 /var ext4 defaults 0 1\n"
	if err != nil || got != want {
		t.Errorf("0.41 fstab: %v\n%s\nwant\n%s", err, got, want)
	}
	got, err = fstabText(tags, true)
	want = "UUID=AAAA-BBBB /boot/efi vfat errors=remount-ro 0 1\n" +
		"UUID=3333 /var ext4 errors=remount-ro 0 1\n" +
		"UUID=2222 /boot ext2 errors=remount-ro 0 1\n" +
		"UUID=1111 / ext4 errors=remount-ro 0 1\n"
	if err != nil || got != want {
		t.Errorf("0.26 fstab: %v\n%s\nwant\n%s", err, got, want)
	}
	if _, err := fstabText([]*Tag{{Name: "x", Mounted: true, MountPoint: "/"}}, false); err == nil {
		t.Error("a mounted tag without a filesystem UUID was accepted")
	}
}

func TestParseCompat(t *testing.T) {
	for in, want := range map[string]string{"": Compat041, "0.41": Compat041, "0.40": Compat041, "0.26": Compat026} {
		if got, err := ParseCompat(in); err != nil || got != want {
			t.Errorf("ParseCompat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"0.27", "0.28", "26", "latest"} {
		if _, err := ParseCompat(bad); err == nil {
			t.Errorf("ParseCompat(%q) accepted", bad)
		}
	}
}
