package bootstrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// hostScript returns script with the target's /boot and /etc/kernel moved
// under dir, to run on the host.
func hostScript(script, dir string) string {
	script = strings.ReplaceAll(script, "/boot/", dir+"/boot/")
	return strings.ReplaceAll(script, "/etc/kernel/", dir+"/etc/kernel/")
}

// initramfsTree makes /boot with kernels 1 (an old one without an
// initramfs), 2 (new, none) and 3 (new, with one), and hooks that log
// their calls into dir/log; the initramfs-tools hook makes the image.
func initramfsTree(t *testing.T, hooks ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"boot", "etc/kernel/postinst.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"vmlinuz-1", "vmlinuz-2", "vmlinuz-3", "initrd.img-3"} {
		if err := os.WriteFile(filepath.Join(dir, "boot", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// linux-base's linux-update-symlinks, found on PATH as in the target.
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	hooks = append(hooks, "../../../bin/linux-update-symlinks")
	for _, h := range hooks {
		body := "#!/bin/sh\necho \"" + filepath.Base(h) + " $*\" >>" + dir + "/log\n"
		if h == "initramfs-tools" {
			body += ": >" + dir + "/boot/initrd.img-$1\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "etc/kernel/postinst.d", h), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runScript(t *testing.T, dir, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", hostScript(script, dir), "test"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	return string(out)
}

func readLog(t *testing.T, dir string) string {
	data, _ := os.ReadFile(filepath.Join(dir, "log"))
	return string(data)
}

// TestDeferredInitramfs: after apt, only the kernels new in the run that
// have no initramfs get one, from the initramfs hook alone when the other
// hooks do not read it, else from every hook in run-parts' order.
func TestDeferredInitramfs(t *testing.T) {
	testreq.NeedTools(t, "run-parts")
	dir := initramfsTree(t, "initramfs-tools", "apt-auto-removal")
	t.Setenv("PATH", dir+"/bin:"+os.Getenv("PATH"))
	if got := strings.Fields(runScript(t, dir, listKernelsScript)); strings.Join(got, " ") != "1 2 3" {
		t.Fatalf("kernels listed: %v", got)
	}
	os.Remove(filepath.Join(dir, "boot/vmlinuz-2"))
	before := strings.Fields(runScript(t, dir, listKernelsScript))
	os.WriteFile(filepath.Join(dir, "boot/vmlinuz-2"), nil, 0o644)
	runScript(t, dir, deferredHooksScript, before...)
	k := dir + "/boot/vmlinuz-2"
	// The links INITRD=No left out first, as the kernel's postinst makes
	// them, then the initramfs.
	if got, want := readLog(t, dir), "linux-update-symlinks install 2 "+k+"\ninitramfs-tools 2 "+k+"\n"; got != want {
		t.Errorf("hooks run:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "boot/initrd.img-1")); err == nil {
		t.Error("the kernel that was there before the run got an initramfs")
	}
	// A second run finds every new kernel with its initramfs.
	os.Remove(filepath.Join(dir, "log"))
	runScript(t, dir, deferredHooksScript, before...)
	if got := readLog(t, dir); got != "" {
		t.Errorf("second run ran hooks:\n%s", got)
	}

	// A hook that may read the initramfs: every hook runs again, in order.
	dir = initramfsTree(t, "initramfs-tools", "apt-auto-removal", "z50-raspi-firmware")
	t.Setenv("PATH", dir+"/bin:"+os.Getenv("PATH"))
	runScript(t, dir, deferredHooksScript, "1", "3")
	k = dir + "/boot/vmlinuz-2"
	want := "linux-update-symlinks install 2 " + k + "\napt-auto-removal 2 " + k + "\ninitramfs-tools 2 " + k + "\nz50-raspi-firmware 2 " + k + "\n"
	if got := readLog(t, dir); got != want {
		t.Errorf("hooks run:\n%s\nwant:\n%s", got, want)
	}
}

// TestDeferredInitramfsVmlinux: a kernel named vmlinux-VERSION (Debian's
// name on ppc64el and riscv64) is listed and gets its initramfs too; a
// ppc64el image once booted without one, since only vmlinuz-* was looked
// for.
func TestDeferredInitramfsVmlinux(t *testing.T) {
	testreq.NeedTools(t, "run-parts")
	dir := initramfsTree(t, "initramfs-tools")
	for _, f := range []string{"vmlinuz-1", "vmlinuz-2", "vmlinuz-3", "initrd.img-3"} {
		os.Remove(filepath.Join(dir, "boot", f))
	}
	k := filepath.Join(dir, "boot/vmlinux-6.1.0-50-powerpc64le")
	if err := os.WriteFile(k, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+"/bin:"+os.Getenv("PATH"))
	if got := strings.TrimSpace(runScript(t, dir, listKernelsScript)); got != "6.1.0-50-powerpc64le" {
		t.Fatalf("kernels listed: %q", got)
	}
	runScript(t, dir, deferredHooksScript)
	v := "6.1.0-50-powerpc64le "
	if got, want := readLog(t, dir), "linux-update-symlinks install "+v+k+"\ninitramfs-tools "+v+k+"\n"; got != want {
		t.Errorf("hooks run:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "boot/initrd.img-6.1.0-50-powerpc64le")); err != nil {
		t.Error("the vmlinux kernel got no initramfs:", err)
	}
}
