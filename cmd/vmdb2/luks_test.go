package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/partition"
)

// luksSpec has one container for each way a spec can give the
// passphrase: vmdb2 0.26's password variant, its luks variant with a key
// file, and 0.28's merged step with a key command. The key file's trailing
// newline is part of its passphrase.
const luksSpec = `steps:
  - mkimg: "{{ output }}"
    size: 160M
  - mklabel: gpt
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 80MiB
    tag: cryptroot
  - mkpart: primary
    device: "{{ output }}"
    start: 80MiB
    end: 120MiB
    tag: cryptdata
  - mkpart: primary
    device: "{{ output }}"
    start: 120MiB
    end: 100%
    tag: cryptswap
  - cryptsetup: cryptroot
    password: hunter2
    name: root
    options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000
  - cryptsetup: cryptdata
    tag: data
    key-file: data.key
    options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --sector-size 4096
  - cryptsetup: cryptswap
    name: other
    key-cmd: printf '%s-%s\n' s3cret from-cmd; echo ignored
    options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000
  - mkfs: ext4
    partition: root
  - mkfs: ext4
    partition: data
  - mkfs: ext4
    partition: other
  - mount: root
  - mount: data
    mount-on: root
    dirname: /srv
  - create-dir: /etc
  - create-file: /etc/hello
    contents: hello
  - create-file: /srv/data
    contents: data
  - fstab: root
`

// TestLUKSContainersOpenWithCryptsetup builds LUKS2 containers offline,
// as root and as an ordinary user, and checks them with cryptsetup: each
// header's UUID is the crypttab's, each passphrase opens its key slot, and
// cryptsetup's own offline decryption gives back a clean filesystem with
// the files. No passphrase reaches the output or the log.
func TestLUKSContainersOpenWithCryptsetup(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs", "e2fsck", "cryptsetup")
	asBuilders(t, func(t *testing.T, uid, gid int) {
		dir := writeWorkDir(t, luksSpec)
		if err := os.WriteFile(filepath.Join(dir, "data.key"), []byte("from-file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "luks.img", "-v", "--log", "build.log")
		if r.code != 0 {
			t.Fatalf("build failed (%d):\n%s%s", r.code, r.stdout, r.stderr)
		}
		log, _ := os.ReadFile(filepath.Join(dir, "build.log"))
		for _, secret := range []string{"hunter2", "from-file", "s3cret-from-cmd"} {
			if strings.Contains(r.stdout+r.stderr+string(log), secret) {
				t.Errorf("the passphrase %q is in the build's output or log", secret)
			}
		}
		img := filepath.Join(dir, "luks.img")
		parts := partitionFiles(t, img)
		root := checkContainer(t, parts[0], "hunter2", "/etc/hello", "hello")
		checkContainer(t, parts[1], "from-file\n", "/data", "data")
		checkContainer(t, parts[2], "s3cret-from-cmd", "", "")
		crypttab := debugfsCat(t, root, "/etc/crypttab")
		want := regexp.MustCompile(`^root UUID=[-0-9a-f]{36} none luks,discard,initramfs\ndata UUID=[-0-9a-f]{36} none luks,discard\nother UUID=[-0-9a-f]{36} none luks,discard\n$`)
		if !want.MatchString(crypttab) {
			t.Errorf("crypttab:\n%s", crypttab)
		}
		for i, p := range parts {
			uuid := strings.TrimSpace(cryptsetupOut(t, dir, "luksUUID", p+".enc"))
			if !strings.Contains(crypttab, "UUID="+uuid+" ") {
				t.Errorf("container %d's UUID %s is not in crypttab:\n%s", i+1, uuid, crypttab)
			}
		}
	})
}

// partitionFiles copies each partition of img to a file of its own (the
// containers, named FILE.enc) and returns the names without .enc.
func partitionFiles(t *testing.T, img string) []string {
	t.Helper()
	d, err := partition.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range d.Partitions() {
		name := filepath.Join(filepath.Dir(img), "part"+string(rune('0'+p.Number)))
		if err := os.WriteFile(name+".enc", data[p.Offset:p.Offset+p.Size], 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	return out
}

// checkContainer opens the container FILE.enc with pass, decrypts a copy
// into FILE with cryptsetup, checks the filesystem and, when path is set,
// that it holds contents, and returns FILE.
func checkContainer(t *testing.T, file, pass, path, contents string) string {
	t.Helper()
	decryptContainer(t, file, pass)
	if out, err := exec.Command("e2fsck", "-fn", file).CombinedOutput(); err != nil {
		t.Errorf("e2fsck of the decrypted %s: %v\n%s", filepath.Base(file), err, out)
	}
	if path != "" {
		if got := debugfsCat(t, file, path); got != contents {
			t.Errorf("%s in %s: %q, want %q", path, filepath.Base(file), got, contents)
		}
	}
	return file
}

// decryptContainer opens the container FILE.enc with pass and decrypts a
// copy into FILE with cryptsetup.
func decryptContainer(t *testing.T, file, pass string) {
	t.Helper()
	dir := filepath.Dir(file)
	keyFile := file + ".pass"
	os.WriteFile(keyFile, []byte(pass), 0o600)
	cryptsetupOut(t, dir, "open", "--test-passphrase", "--disable-locks", "--key-file", keyFile, file+".enc")
	data, _ := os.ReadFile(file + ".enc")
	os.WriteFile(file, data, 0o600)
	cryptsetupOut(t, dir, "reencrypt", "--decrypt", "--force-offline-reencrypt", "--disable-locks",
		"--batch-mode", "--key-file", keyFile, "--header", file+".hdr", file)
}

func cryptsetupOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("cryptsetup", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cryptsetup %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func debugfsCat(t *testing.T, fsImage, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, fsImage).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}

// luksReproSpec is a LUKS root; RANDOM becomes a step that makes its
// cleartext differ between builds, or nothing.
const luksReproSpec = `steps:
  - mkimg: "{{ output }}"
    size: 64M
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: cryptroot
  - cryptsetup: cryptroot
    password: hunter2
    name: root
    options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000
  - mkfs: ext4
    partition: root
  - mount: root
  - create-dir: /etc
RANDOM`

// TestCheckReproducibleComparesLUKSByCleartext: two builds of a LUKS
// root differ in every byte of the container (random key and salts) but
// are reproducible when their cleartexts are the same, and not when they
// differ.
func TestCheckReproducibleComparesLUKSByCleartext(t *testing.T) {
	checkTools(t, "mke2fs", "cryptsetup")
	for _, tc := range []struct {
		name, random string
		code         int
		want         string
	}{
		{"same", "", 0, "except the expected differences: the header, key slots and ciphertext of 1 LUKS container(s)"},
		{"different", "  - shell: head -c 32 /dev/urandom > \"$ROOT/etc/random\"\n    root-fs: root\n", 1, "NOT reproducible: LUKS container 1 differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeWorkDir(t, strings.Replace(luksReproSpec, "RANDOM", tc.random, 1))
			r := buildAs(t, os.Getuid(), os.Getgid(), dir, nil, "spec.vmdb", "--output", "r.img", "--check-reproducible")
			if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
				t.Errorf("exit %d, want %d and %q:\n%s%s", r.code, tc.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
}

// luksLVMSpec stacks LVM on LUKS on a partition, and LUKS on one of its
// LVs.
const luksLVMSpec = `steps:
  - mkimg: "{{ output }}"
    size: 200M
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: cryptpv
  - cryptsetup: cryptpv
    password: hunter2
    name: pv0
    options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000
  - vgcreate: vg0
    physical: [pv0]
  - lvcreate: vg0
    name: root
    size: 100M
  - lvcreate: vg0
    name: sec
    size: 40M
  - cryptsetup: sec
    name: inner
    key-cmd: echo inner
    options: --pbkdf pbkdf2 --pbkdf-force-iterations 1000
  - mkfs: ext4
    partition: root
  - mkfs: ext4
    partition: inner
  - mount: root
  - create-dir: /etc
  - create-file: /etc/hello
    contents: hello
  - fstab: root
`

// TestLUKSStacksWithLVM: LVM on LUKS (the VG's PV is a container's
// cleartext) and LUKS on LVM (a container in an LV), built as root and
// as an ordinary user; decrypted by cryptsetup, the PV holds LVM's label,
// its LVs the filesystem and the inner container, and the root's
// container is the one crypttab marks for the initramfs.
func TestLUKSStacksWithLVM(t *testing.T) {
	checkTools(t, "mke2fs", "debugfs", "e2fsck", "cryptsetup")
	asBuilders(t, func(t *testing.T, uid, gid int) {
		dir := writeWorkDir(t, luksLVMSpec)
		r := buildAs(t, uid, gid, dir, nil, "spec.vmdb", "--output", "stack.img")
		if r.code != 0 {
			t.Fatalf("build failed (%d):\n%s%s", r.code, r.stdout, r.stderr)
		}
		pv := partitionFiles(t, filepath.Join(dir, "stack.img"))[0]
		decryptContainer(t, pv, "hunter2")
		data, err := os.ReadFile(pv)
		if err != nil {
			t.Fatal(err)
		}
		if string(data[512:520]) != "LABELONE" {
			t.Fatalf("the decrypted PV has no LVM label: %q", data[512:520])
		}
		// pvcreate's first extent is at 1 MiB; LVs follow in order.
		lv := func(name string, startMiB, sizeMiB int) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p+".enc", data[startMiB<<20:(startMiB+sizeMiB)<<20], 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		root := lv("root", 1, 100)
		os.Rename(root+".enc", root)
		if out, err := exec.Command("e2fsck", "-fn", root).CombinedOutput(); err != nil {
			t.Errorf("e2fsck of LV root: %v\n%s", err, out)
		}
		checkContainer(t, lv("sec", 101, 40), "inner", "", "")
		crypttab := debugfsCat(t, root, "/etc/crypttab")
		if !regexp.MustCompile(`^pv0 UUID=\S+ none luks,discard,initramfs\ninner UUID=\S+ none luks,discard\n$`).MatchString(crypttab) {
			t.Errorf("crypttab:\n%s", crypttab)
		}
	})
}

// TestKeyCmdFailureNamesTheStep: a key-cmd that fails, or prints nothing,
// stops the build with the step's line and leaves no image.
func TestKeyCmdFailureNamesTheStep(t *testing.T) {
	checkTools(t, "cryptsetup")
	for cmd, want := range map[string]string{
		"echo oops >&2; exit 3": "spec.vmdb:11: cryptsetup: key-cmd failed: sh -ec 'echo oops >&2; exit 3' failed with exit status 3",
		"echo":                  "spec.vmdb:11: cryptsetup: key-cmd printed no passphrase",
	} {
		spec := "steps:\n  - mkimg: \"{{ output }}\"\n    size: 64M\n  - mklabel: msdos\n    device: \"{{ output }}\"\n" +
			"  - mkpart: primary\n    device: \"{{ output }}\"\n    start: 1MiB\n    end: 100%\n    tag: c\n" +
			"  - cryptsetup: c\n    name: root\n    key-cmd: " + cmd + "\n"
		dir := writeWorkDir(t, spec)
		r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "k.img")
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("key-cmd %q: exit %d, stderr lacks %q:\n%s", cmd, r.code, want, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "k.img")); err == nil {
			t.Errorf("key-cmd %q: the image was left behind", cmd)
		}
	}
}
