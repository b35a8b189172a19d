package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// basecache builds its tarball in the user namespace, whose runner
// re-executes this test binary: it must meet userns.Init before anything
// else (TestMain comes too late for that in a file of its own).
func init() { userns.Init() }

// ansibleSpec unpacks a cached bookworm base with python3 and runs
// testdata/ansible/playbook.yml through the ansible step.
const ansibleSpec = `steps:
  - mkimg: "{{ output }}"
    size: 1G
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - unpack-rootfs: /
  - ansible: /
    playbook: ansible/playbook.yml
    config_file: ansible/ansible.cfg
    tags: greeting
    extra_vars:
      greeting: hello from ansible
      owner: 1234
      typed:
        word: "yes"
        mode: "0755"
        "on": on
        n: 7
        list: [1, two, "1:20"]
`

// ansibleBase returns the cached bookworm base tarball with python3.
func ansibleBase(t *testing.T) string { return baseTarball(t, "python3") }

// ansibleWorkDir is a work directory with the spec and testdata/ansible.
func ansibleWorkDir(t *testing.T, spec string) string {
	t.Helper()
	dir := writeWorkDir(t, spec)
	src := filepath.Join(repoRoot(t), "testdata", "ansible")
	if err := os.Mkdir(filepath.Join(dir, "ansible"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"playbook.yml", "ansible.cfg"} {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ansible", n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func checkAnsibleTools(t *testing.T) {
	t.Helper()
	checkTools(t, "ansible-playbook", "debugfs", "e2fsck")
	out, err := exec.Command("ansible-doc", "-t", "connection", "-l").Output()
	if err != nil || !strings.Contains(string(out), "chroot") {
		t.Fatalf("Ansible's chroot connection is missing (install the Debian package ansible): %v", err)
	}
}

func TestAnsibleStep(t *testing.T) {
	checkAnsibleTools(t)
	needMirror(t)
	parallelBuild(t)
	tarball := ansibleBase(t)

	check := func(who, dir string, r result, took time.Duration) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("build as %s failed (%d):\n%s\n%s", who, r.code, r.stdout, r.stderr)
		}
		t.Logf("built as %s in %v", who, took.Round(time.Second))
		for _, want := range []string{"Created ", " for Ansible inventory", "Removing ",
			// The one-line callback of ansible/ansible.cfg: config_file was used.
			" | CHANGED => "} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("-v output lacks %q:\n%s", want, r.stdout)
			}
		}
		img := filepath.Join(dir, "out.img")
		const off = 1 << 20
		if got, want := debugfs(t, img, off, "cat /etc/greeting"), "hello from ansible (rootfs_tarball "+filepath.Base(tarball)+")\n"; got != want {
			t.Errorf("/etc/greeting: %q, want %q", got, want)
		}
		if m := statRE.FindStringSubmatch(debugfs(t, img, off, "stat /etc/greeting")); m == nil || m[1] != "0640" || m[2] != "1234" || m[3] != "42" {
			t.Errorf("/etc/greeting: mode, uid, gid %v, want 0640 1234 42", m)
		}
		if got := debugfs(t, img, off, "cat /etc/ansible-facts"); got != "bookworm root /usr/bin/python3\n" {
			t.Errorf("/etc/ansible-facts: %q", got)
		}
		if got, want := debugfs(t, img, off, "cat /etc/ansible-vars.json"), `{"word": "yes", "mode": "0755", "on": true, "n": 7, "list": [1, "two", "1:20"]}`+"\n"; got != want {
			t.Errorf("extra_vars as Ansible saw them: %s, want %s", got, want)
		}
		if got := debugfs(t, img, off, "stat /etc/not-selected"); !strings.Contains(got, "File not found") && got != "" {
			t.Errorf("the task tagged `other` ran: %s", got)
		}
		if out, err := exec.Command(sbin("e2fsck"), "-fn", img+"?offset=1048576").CombinedOutput(); err != nil {
			t.Errorf("e2fsck: %v\n%s", err, out)
		}
		noStageLeft(t, filepath.Join(dir, "tmp"))
	}

	dir := ansibleWorkDir(t, ansibleSpec)
	start := time.Now()
	cmd := exec.Command(binary, "-v", "spec.vmdb", "--output", "out.img", "--rootfs-tarball", tarball)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	r := result{}
	if err := cmd.Run(); err != nil {
		r.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
	}
	r.stdout, r.stderr = out.String(), errb.String()
	check("uid "+strconv.Itoa(os.Geteuid()), dir, r, time.Since(start))

	if os.Geteuid() != 0 {
		return
	}
	uid, gid := ordinaryUser(t)
	udir := ansibleWorkDir(t, ansibleSpec)
	chownTree(t, udir, uid, gid)
	start = time.Now()
	r = runAs(t, uid, gid, udir, []string{"TMPDIR=" + filepath.Join(udir, "tmp")}, userBinary(t),
		"-v", "spec.vmdb", "--output", "out.img", "--rootfs-tarball", tarball)
	check(testUser, udir, r, time.Since(start))
	// Ansible makes an empty ~/.ansible whatever it is told; its temporary
	// files go to the stage.
	if _, err := os.Stat(filepath.Join(udir, ".ansible", "tmp")); err == nil {
		t.Errorf("Ansible put its temporary files into the user's home (%s/.ansible/tmp)", udir)
	}
}

// TestAnsibleBadInput: a missing config file or playbook is reported with
// the step's file:line before Ansible runs, and a target without python3
// gets a failure that says so. The target is target_test.go's busybox tree.
func TestAnsibleBadInput(t *testing.T) {
	checkTools(t, "busybox", "ansible-playbook")
	for _, c := range []struct{ name, step, want string }{
		{"config", "  - ansible: /\n    playbook: ansible/playbook.yml\n    config_file: ansible/missing.cfg\n",
			"spec.vmdb:21: ansible: Ansible config file ansible/missing.cfg does not exist"},
		{"playbook", "  - ansible: /\n    playbook: ansible/missing.yml\n",
			"spec.vmdb:21: ansible: Ansible playbook ansible/missing.yml does not exist"},
		// The busybox target has no Python.
		{"python", "  - ansible: /\n    playbook: ansible/playbook.yml\n    tags: greeting\n    extra_vars:\n      greeting: hi\n      owner: 0\n",
			"the image has no python3, which Ansible needs in the target"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := strings.Replace(targetSpec, "  - chroot: /\n", c.step+"  - chroot: /\n", 1)
			dir := ansibleWorkDir(t, spec)
			r := runVmdb2(t, dir, "", "spec.vmdb", "--output", "out.img")
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, want 1 and %q:\n%s", r.code, c.want, r.stderr)
			}
		})
	}
}
