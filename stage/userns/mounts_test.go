package userns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	e, ok := parseMountinfo(`36 35 98:0 /mnt1 /mnt/a\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue`)
	if !ok || e.id != 36 || e.parent != 35 || e.point != "/mnt/a b" || e.fstype != "ext3" {
		t.Errorf("got %+v, %v", e, ok)
	}
	if _, ok := parseMountinfo("36 35 98:0 / /x rw"); ok {
		t.Error("a line without its separator was accepted")
	}
	if got := unescapeMountinfo(`a\134b\011c\`); got != "a\\b\tc\\" {
		t.Errorf("unescape: %q", got)
	}
}

func TestNewTopMounts(t *testing.T) {
	ms := []mountEntry{
		{id: 1, parent: 0, point: "/"},
		{id: 2, parent: 1, point: "/st"},      // the tree's self-bind: before
		{id: 3, parent: 2, point: "/st/proc"}, // new, top
		{id: 4, parent: 2, point: "/st/mnt"},  // new, top
		{id: 5, parent: 4, point: "/st/mnt/x"},
		{id: 6, parent: 1, point: "/elsewhere"},
		{id: 7, parent: 3, point: "/st/proc"}, // stacked on 3: comes with it
		{id: 8, parent: 2, point: "/st/dev"},  // new
		{id: 9, parent: 2, point: "/st/dev"},  // covers 8: the topmost wins
		{id: 10, parent: 1, point: "/stx"},    // beside the tree, not in it
	}
	got := newTopMounts(ms, map[int]bool{1: true, 2: true}, "/st")
	var points []string
	var ids []int
	for _, m := range got {
		points, ids = append(points, m.point), append(ids, m.id)
	}
	if !reflect.DeepEqual(points, []string{"/proc", "/mnt", "/dev"}) || !reflect.DeepEqual(ids, []int{3, 4, 9}) {
		t.Errorf("got %v %v", points, ids)
	}
}

// mountStage is a stage with the directories a Raspberry Pi build mounts.
func mountStage(t *testing.T) string {
	t.Helper()
	stage := newStage(t)
	for _, d := range []string{"boot/firmware", "proc", "mnt"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return stage
}

// mountPoints lists the mount points of the mountinfo text, as its reader
// sees them.
func mountPoints(info string) map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(info, "\n") {
		if e, ok := parseMountinfo(line); ok {
			m[e.point] = true
		}
	}
	return m
}

// TestMountPointsLookMounted: the build's mount points are mounts in the
// namespace, confined or not (but for a confined "/"), and nothing of them reaches the host or
// stays in the stage.
func TestMountPointsLookMounted(t *testing.T) {
	needNS(t)
	stage := mountStage(t)
	hostBefore := hostMounts(t)
	before := snapshot(t, stage)
	points := []string{"/", "/boot", "/boot/firmware"}

	out := mustRun(t, Cmd{Root: stage, Tree: stage, MountPoints: points, Virtual: true,
		Argv: []string{"/nsprobe", "cat", "/proc/self/mountinfo"}})
	got := mountPoints(out)
	for _, p := range points[1:] {
		if !got[p] {
			t.Errorf("confined: %s is no mount point:\n%s", p, out)
		}
	}
	if got["/"] { // see TestRootHasNoMountLine
		t.Errorf("confined: / is a mount point:\n%s", out)
	}
	out = mustRun(t, Cmd{Tree: stage, MountPoints: points, Argv: []string{"cat", "/proc/self/mountinfo"}})
	got = mountPoints(out)
	real, _ := filepath.EvalSymlinks(stage)
	for _, p := range []string{real, real + "/boot", real + "/boot/firmware"} {
		if !got[p] {
			t.Errorf("on the host's side: %s is no mount point:\n%s", p, out)
		}
	}
	if after := hostMounts(t); after != hostBefore {
		t.Errorf("the host's mounts changed:\n%s\nnow:\n%s", hostBefore, after)
	}
	sameTree(t, before, snapshot(t, stage))
}

// TestHostileMountPointsSelfBind: a mount point that the image replaced
// with a link (to /, to a host directory, or a parent that is one) makes
// Run fail, confined or not; the host directory is not mounted over or
// written.
func TestHostileMountPointsSelfBind(t *testing.T) {
	needNS(t)
	c := newCanary(t)
	for _, tc := range []struct{ name, link, target, point string }{
		{"to /", "boot/firmware", "/", "/boot/firmware"},
		{"to host", "boot/firmware", c.dir, "/boot/firmware"},
		{"relative", "boot/firmware", "../../../../../../.." + c.dir, "/boot/firmware"},
		{"parent", "boot", c.dir, "/boot/x"}, // the canary has an x/
		{"dotdot", "boot/firmware", "..", "/boot/firmware"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stage := newStage(t)
			if err := os.MkdirAll(filepath.Join(stage, filepath.Dir(tc.link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.target, filepath.Join(stage, tc.link)); err != nil {
				t.Fatal(err)
			}
			hostBefore := hostMounts(t)
			points := []string{"/", tc.point}
			for _, cmd := range []Cmd{
				{Root: stage, Tree: stage, MountPoints: points, Virtual: true, Argv: []string{"/nsprobe", "write", tc.point + "/planted", "x"}},
				{Tree: stage, MountPoints: points, Argv: []string{"sh", "-c", "echo x > " + stage + tc.point + "/planted"}},
			} {
				_, err := run(t, cmd)
				if err == nil || !strings.Contains(err.Error(), "symbolic link") {
					t.Errorf("Run with Root %q: %v, want a failure naming the link", cmd.Root, err)
				}
			}
			c.check(t)
			if after := hostMounts(t); after != hostBefore {
				t.Errorf("the host's mounts changed")
			}
		})
	}
}

// TestKeepMounts: mounts a command makes in the tree are there in the
// next commands given the same Carry, confined or not (a tmpfs with its
// files, a fresh proc of each namespace), until one unmounts them; the
// host's mounts never change, and Close frees them.
func TestKeepMounts(t *testing.T) {
	needNS(t)
	stage := mountStage(t)
	hostBefore := hostMounts(t)
	before := snapshot(t, stage)
	var carry Carry
	defer carry.Close()
	shell := func(script string) string {
		t.Helper()
		return mustRun(t, Cmd{Tree: stage, MountPoints: []string{"/"}, Carry: &carry, KeepMounts: true,
			Argv: []string{"sh", "-ec", script}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ROOT=" + stage}})
	}
	shell(`mount -t proc proc "$ROOT/proc"; mount -t tmpfs -o mode=755 tmpfs "$ROOT/mnt"; echo kept > "$ROOT/mnt/f"; mkdir "$ROOT/mnt/sub"; mount -t tmpfs tmpfs "$ROOT/mnt/sub"; echo deeper > "$ROOT/mnt/sub/g"`)
	if got := carry.Targets(); !reflect.DeepEqual(got, []string{"/mnt", "/proc"}) {
		t.Fatalf("kept %v, want /mnt and /proc", got)
	}
	out := shell(`test -e "$ROOT/proc/self/mountinfo"; cat "$ROOT/mnt/f" "$ROOT/mnt/sub/g"; grep -c " $ROOT/proc " /proc/self/mountinfo`)
	if out != "kept\ndeeper\n1\n" {
		t.Errorf("second command: %q", out)
	}
	// Confined: the kept mounts are there too, over Virtual's.
	out = mustRun(t, Cmd{Root: stage, Tree: stage, Carry: &carry, Virtual: true, Argv: []string{"/nsprobe", "cat", "/mnt/sub/g"}})
	if out != "deeper\n" {
		t.Errorf("confined: %q", out)
	}
	out = mustRun(t, Cmd{Root: stage, Tree: stage, Carry: &carry, Virtual: true, Argv: []string{"/nsprobe", "cat", "/proc/self/mountinfo"}})
	if m := mountPoints(out); !m["/mnt"] || !m["/mnt/sub"] {
		t.Errorf("confined: the kept mounts are missing:\n%s", out)
	}
	shell(`umount "$ROOT/proc"; test ! -e "$ROOT/proc/self"`)
	if got := carry.Targets(); !reflect.DeepEqual(got, []string{"/mnt"}) {
		t.Errorf("after umount: kept %v, want /mnt", got)
	}
	out = shell(`test ! -e "$ROOT/proc/self"; cat "$ROOT/mnt/f"; umount -R "$ROOT/mnt"; test ! -e "$ROOT/mnt/f"`)
	if out != "kept\n" || len(carry.Targets()) != 0 {
		t.Errorf("last command: %q, kept %v", out, carry.Targets())
	}
	if after := hostMounts(t); after != hostBefore {
		t.Errorf("the host's mounts changed:\n%s\nnow:\n%s", hostBefore, after)
	}
	sameTree(t, before, snapshot(t, stage))
}

// TestKeepMountsOnFailure: a command that fails still leaves its mounts
// to the next; a command that fails to start changes nothing.
func TestKeepMountsOnFailure(t *testing.T) {
	needNS(t)
	stage := mountStage(t)
	var carry Carry
	defer carry.Close()
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ROOT=" + stage}
	_, err := run(t, Cmd{Tree: stage, Carry: &carry, KeepMounts: true, Env: env,
		Argv: []string{"sh", "-ec", `mount -t tmpfs tmpfs "$ROOT/mnt"; exit 3`}})
	if err == nil || len(carry.Targets()) != 1 {
		t.Fatalf("failing command: %v, kept %v", err, carry.Targets())
	}
	// Its mount point gone: the next command fails before it starts.
	if err := os.Remove(filepath.Join(stage, "mnt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(stage, "mnt")); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, Cmd{Tree: stage, Carry: &carry, KeepMounts: true, Env: env, Argv: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "/mnt") {
		t.Errorf("a link in the kept mount's place: %v", err)
	}
	if len(carry.Targets()) != 1 {
		t.Errorf("kept %v after a failed setup", carry.Targets())
	}
}
