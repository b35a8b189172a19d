package userns

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseSubIDs(t *testing.T) {
	in := "# comment\n\nalice:100000:65536\nbob:165536:65536\n1001:231072:1000\nalice:300000:70000\n"
	got, err := parseSubIDs(strings.NewReader(in), "alice", 1001)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{100000, 65536}, {231072, 1000}, {300000, 70000}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if _, err := parseSubIDs(strings.NewReader("alice:x:1\n"), "alice", 1); err == nil {
		t.Error("a bad start was accepted")
	}
	if _, err := parseSubIDs(strings.NewReader("alice:1\n"), "alice", 1); err == nil {
		t.Error("a line with two fields was accepted")
	}
}

// fakeFacts describes a well-configured ordinary user; tests break one thing.
func fakeFacts() facts {
	files := map[string]string{
		"/proc/sys/user/max_user_namespaces":         "15000\n",
		"/proc/sys/kernel/unprivileged_userns_clone": "1\n",
	}
	return facts{
		euid: 1001, egid: 1002, userName: "alice", nsSupport: true,
		subuid: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("bob:100000:65536\nalice:165536:65536\n")), nil
		},
		subgid: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("alice:200000:65536\n")), nil
		},
		readFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		stat:     func(p string) (os.FileInfo, error) { return fakeInfo{os.ModeSetuid | 0o755}, nil },
		lookPath: func(n string) (string, error) { return "/usr/bin/" + n, nil },
		fileCaps: func(string) bool { return false },
	}
}

type fakeInfo struct{ mode os.FileMode }

func (f fakeInfo) Name() string       { return "x" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() os.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: 0} }

func TestComputeMapping(t *testing.T) {
	m, err := computeMapping(fakeFacts())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, uid, gid int }{{0, 1001, 1002}, {1, 165536, 200000}, {1000, 166535, 200999}, {65535, 165536 + 65534, 200000 + 65534}} {
		if u, ok := m.HostUID(c.in); !ok || u != c.uid {
			t.Errorf("HostUID(%d) = %d %v, want %d", c.in, u, ok, c.uid)
		}
		if g, ok := m.HostGID(c.in); !ok || g != c.gid {
			t.Errorf("HostGID(%d) = %d %v, want %d", c.in, g, ok, c.gid)
		}
		if in, ok := m.InsideUID(c.uid); !ok || in != c.in {
			t.Errorf("InsideUID(%d) = %d %v, want %d", c.uid, in, ok, c.in)
		}
	}
	if _, ok := m.HostUID(Size); ok {
		t.Errorf("HostUID(%d) is mapped", Size)
	}
	if m.Direct {
		t.Error("an ordinary user got a direct mapping")
	}
	want := "uid 0->1001 (1), 1->165536 (65535); gid 0->1002 (1), 1->200000 (65535)"
	if m.String() != want {
		t.Errorf("String() = %q, want %q", m.String(), want)
	}

	root := fakeFacts()
	root.euid, root.egid = 0, 0
	m, err = computeMapping(root)
	if err != nil || !m.Direct {
		t.Fatalf("root: %v %v", m, err)
	}
	if u, _ := m.HostUID(1000); u != 1000 {
		t.Errorf("root HostUID(1000) = %d", u)
	}
}

func TestAvailableExplains(t *testing.T) {
	if err := checkStatic(fakeFacts()); err != nil {
		t.Fatalf("a good configuration was refused: %v", err)
	}
	cases := []struct {
		name   string
		break_ func(*facts)
		want   []string
	}{
		{"no subuid entry", func(f *facts) {
			f.subuid = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("bob:100000:65536\n")), nil }
		}, []string{"/etc/subuid", "alice:165536:65536", "usermod --add-subuids 165536-231071 alice"}},
		{"subgid range too small", func(f *facts) {
			f.subgid = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("alice:200000:1000\n")), nil }
		}, []string{"/etc/subgid", "only 200000:1000", "65535"}},
		{"no subuid file", func(f *facts) {
			f.subuid = func() (io.ReadCloser, error) { return nil, fs.ErrNotExist }
		}, []string{"reading /etc/subuid", "alice:100000:65536"}},
		{"no ranges at all", func(f *facts) {
			f.subuid = func() (io.ReadCloser, error) { return nil, fs.ErrNotExist }
			f.subgid = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }
		}, []string{"/etc/subuid", "/etc/subgid", "--add-subgids 100000-165535 alice"}},
		{"no newuidmap", func(f *facts) {
			f.lookPath = func(n string) (string, error) { return "", errors.New("not found") }
		}, []string{"newuidmap is missing", "newgidmap is missing", "apt-get install uidmap"}},
		{"newuidmap not setuid", func(f *facts) {
			f.stat = func(string) (os.FileInfo, error) { return fakeInfo{0o755}, nil }
		}, []string{"not set-user-ID root", "chmod u+s"}},
		{"sysctl off", func(f *facts) {
			old := f.readFile
			f.readFile = func(p string) ([]byte, error) {
				if p == "/proc/sys/kernel/unprivileged_userns_clone" {
					return []byte("0\n"), nil
				}
				return old(p)
			}
		}, []string{"kernel.unprivileged_userns_clone=1"}},
		{"max namespaces 0", func(f *facts) {
			old := f.readFile
			f.readFile = func(p string) ([]byte, error) {
				if p == "/proc/sys/user/max_user_namespaces" {
					return []byte("0\n"), nil
				}
				return old(p)
			}
		}, []string{"user.max_user_namespaces"}},
		{"no kernel support", func(f *facts) { f.nsSupport = false }, []string{"CONFIG_USER_NS"}},
	}
	for _, c := range cases {
		f := fakeFacts()
		c.break_(&f)
		err := checkStatic(f)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestCoversRange(t *testing.T) {
	for in, want := range map[string]bool{
		"         0          0 4294967295\n":          true,
		"0 0 65536\n":                                 true,
		"0 1000 1\n1 100000 65535\n":                  true,
		"0 1000 1\n":                                  false,
		"0 1000 1\n2 100000 65535\n":                  false,
		"1 100000 65535\n0 1000 1\n":                  true,
		"0 100000 1000\n1000 200000 64536\nrubbish\n": true,
		"": false,
	} {
		if got := coversRange(in); got != want {
			t.Errorf("coversRange(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestConfigChecks: a Cmd the child could not run is refused, with why,
// before anything starts, and the defaults are filled in.
func TestConfigChecks(t *testing.T) {
	root := t.TempDir()
	file := root + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  Cmd
		want string
	}{
		{Cmd{}, "exactly one of Argv and Helper"},
		{Cmd{Argv: []string{"true"}, Helper: helperProbe}, "exactly one of Argv and Helper"},
		{Cmd{Helper: "no-such-helper"}, "no-such-helper"},
		{Cmd{Argv: []string{"true"}, Virtual: true}, "Virtual needs a Root"},
		{Cmd{Argv: []string{"true"}, Root: "/"}, "must not be the host's /"},
		{Cmd{Argv: []string{"true"}, Root: "/nonexistent-stage"}, "root: "},
		{Cmd{Argv: []string{"true"}, Root: file}, "is not a directory"},
		{Cmd{Argv: []string{"true"}, Binds: []Bind{{Source: "/nonexistent", Target: "/x"}}}, "bind source"},
		{Cmd{Argv: []string{"true"}, Binds: []Bind{{Source: "/tmp", Target: "relative"}}}, "must be an absolute path"},
		{Cmd{Argv: []string{"true"}, Root: root, Binds: []Bind{{Source: "/tmp", Target: ""}}}, "must be an absolute path"},
		{Cmd{Argv: []string{"true"}, MountPoints: []string{"/boot"}}, "need a Tree"},
	} {
		if _, err := tc.cmd.config(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cmd, err, tc.want)
		}
	}
	cfg, err := Cmd{Argv: []string{"true"}, Env: []string{"A=1", envStage + "=setup"}}.config()
	wd, _ := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Env) != 1 || cfg.Env[0] != "A=1" || cfg.Hostname != "localhost" || cfg.Dir != wd {
		t.Errorf("config without a root = %+v", cfg)
	}
	cfg, err = Cmd{Argv: []string{"true"}, Root: root, Binds: []Bind{{Source: "/tmp", Target: "mnt"}}}.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != "/" || cfg.Root != root || len(cfg.Binds) != 1 || cfg.Binds[0].Target != "/mnt" {
		t.Errorf("config with a root = %+v", cfg)
	}
}

func TestDuplicateHelper(t *testing.T) {
	RegisterHelper("test.dup", func([]string) error { return nil })
	RegisterHelper("test.dup", func([]string) error { return nil })
	if _, err := (Cmd{Helper: "test.dup"}).config(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate helper: %v", err)
	}
}

func TestExitErrorMessages(t *testing.T) {
	for _, c := range []struct {
		e    ExitError
		want string
	}{
		{ExitError{What: `"false"`, Code: 1}, `"false" exited with status 1`},
		{ExitError{What: `"x"`, Code: -1, Signal: 9}, `"x" was killed by signal 9 (killed)`},
		{ExitError{What: `helper "h"`, Code: 1, Message: "boom"}, `helper "h": boom`},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

// TestMappingCutAlongParent: inside rootless podman root's own uid_map is
// "0 1001 1" then "1 100000 65536"; the kernel refuses a line of the new
// namespace's map whose ids span two of those lines, so the identity
// mapping must be cut at 1.
func TestMappingCutAlongParent(t *testing.T) {
	root := fakeFacts()
	root.euid, root.egid = 0, 0
	old := root.readFile
	root.readFile = func(p string) ([]byte, error) {
		switch p {
		case "/proc/self/uid_map", "/proc/self/gid_map":
			return []byte("         0       1001          1\n         1     100000      65536\n"), nil
		}
		return old(p)
	}
	m, err := computeMapping(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := "uid 0->0 (1), 1->1 (65535); gid 0->0 (1), 1->1 (65535)"; m.String() != want {
		t.Errorf("mapping %q, want %q", m.String(), want)
	}

	// An ordinary user whose subordinate range crosses a cut of the
	// parent's map.
	user := fakeFacts()
	user.readFile = func(p string) ([]byte, error) {
		if p == "/proc/self/uid_map" {
			return []byte("0 0 170000\n170000 300000 100000\n"), nil
		}
		return old(p)
	}
	m, err = computeMapping(user)
	if err != nil {
		t.Fatal(err)
	}
	want := "uid 0->1001 (1), 1->165536 (4464), 4465->170000 (61071); gid 0->1002 (1), 1->200000 (65535)"
	if m.String() != want {
		t.Errorf("mapping %q, want %q", m.String(), want)
	}
	for id := 0; id < Size; id += 997 {
		if _, ok := m.HostUID(id); !ok {
			t.Fatalf("uid %d is not mapped", id)
		}
	}
}

// TestExplainTrial: a trial namespace refused with EPERM is blamed on the
// seccomp filter when one applies (Docker's default profile), else on an
// LSM; other failures keep their own message.
func TestExplainTrial(t *testing.T) {
	refused := fmt.Errorf("userns: starting helper %q: %w", helperProbe,
		&fs.PathError{Op: "fork/exec", Path: "/proc/self/exe", Err: syscall.EPERM})
	withStatus := func(status string) facts {
		f := fakeFacts()
		old := f.readFile
		f.readFile = func(p string) ([]byte, error) {
			if p == "/proc/self/status" {
				return []byte("Name:\tvmdb2\nNoNewPrivs:\t1\nSeccomp:\t" + status + "\nSeccomp_filters:\t1\n"), nil
			}
			return old(p)
		}
		return f
	}
	cases := []struct {
		name string
		err  error
		f    facts
		want []string
	}{
		{"docker's seccomp profile", refused, withStatus("2"),
			[]string{"seccomp", "--security-opt seccomp=unconfined", "seccompProfile", "Unconfined", "hostUsers: false", "operation not permitted"}},
		{"no filter: an LSM", refused, withStatus("0"),
			[]string{"AppArmor", "kernel.apparmor_restrict_unprivileged_userns=0"}},
		{"another failure", errors.New("userns: setting up the namespace: mounting proc: invalid argument"), withStatus("2"),
			[]string{"a trial namespace failed", "mounting proc"}},
	}
	for _, c := range cases {
		err := explainTrial(c.err, c.f)
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", c.name, err, w)
			}
		}
	}
	if strings.Contains(explainTrial(refused, withStatus("0")).Error(), "seccomp=unconfined") {
		t.Error("EPERM without a seccomp filter was blamed on seccomp")
	}
	if explainTrial(nil, withStatus("2")) != nil {
		t.Error("success was explained as a failure")
	}
}

// TestAvailableExplainsAppArmor: Ubuntu 24.04's restriction of
// unprivileged user namespaces is named with its sysctl, for ordinary users
// only (root is not restricted).
func TestAvailableExplainsAppArmor(t *testing.T) {
	restricted := func(f *facts) {
		old := f.readFile
		f.readFile = func(p string) ([]byte, error) {
			if p == "/proc/sys/kernel/apparmor_restrict_unprivileged_userns" {
				return []byte("1\n"), nil
			}
			return old(p)
		}
	}
	f := fakeFacts()
	restricted(&f)
	err := checkStatic(f)
	if err == nil || !strings.Contains(err.Error(), "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0") {
		t.Errorf("error %v does not name the sysctl", err)
	}
	root := fakeFacts()
	root.euid, root.egid = 0, 0
	restricted(&root)
	if err := checkStatic(root); err != nil {
		t.Errorf("root was refused: %v", err)
	}
}

// TestMappingSplitRanges: a user whose subordinate ids are split around its
// own uid (inside a rootless container of 65537 ids) gets them all, in file
// order; too few ids in all are still refused.
func TestMappingSplitRanges(t *testing.T) {
	f := fakeFacts()
	f.euid, f.egid = 1000, 1000
	split := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("alice:1:999\nbob:5:5\nalice:1001:64536\n")), nil
	}
	f.subuid, f.subgid = split, split
	m, err := computeMapping(f)
	if err != nil {
		t.Fatal(err)
	}
	want := "uid 0->1000 (1), 1->1 (999), 1000->1001 (64536); gid 0->1000 (1), 1->1 (999), 1000->1001 (64536)"
	if m.String() != want {
		t.Errorf("mapping %q, want %q", m.String(), want)
	}
	f.subuid = func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("alice:1:999\nalice:1001:60000\n")), nil
	}
	if _, err := computeMapping(f); err == nil || !strings.Contains(err.Error(), "only 1:999, 1001:60000") {
		t.Errorf("too few ids: %v", err)
	}
}

// TestAvailableExplainsContainerUser: an ordinary user in a container whose
// bounding set lacks CAP_SYS_ADMIN (podman's and Docker's defaults) cannot
// use a set-user-ID newuidmap; the fix is file capabilities.
func TestAvailableExplainsContainerUser(t *testing.T) {
	withBounding := func(f *facts, bnd string) {
		old := f.readFile
		f.readFile = func(p string) ([]byte, error) {
			if p == "/proc/self/status" {
				return []byte("Name:\tvmdb2\nCapBnd:\t" + bnd + "\n"), nil
			}
			return old(p)
		}
	}
	f := fakeFacts()
	withBounding(&f, "00000000800405fb") // podman's default capabilities
	err := checkStatic(f)
	for _, w := range []string{"without CAP_SYS_ADMIN", "setcap cap_setuid+ep /usr/bin/newuidmap", "setcap cap_setgid+ep /usr/bin/newgidmap", "chmod u-s"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
	withBounding(&f, "000001ffffffffff")
	if err := checkStatic(f); err != nil {
		t.Errorf("a full bounding set was refused: %v", err)
	}
	f = fakeFacts()
	withBounding(&f, "00000000800405fb")
	f.fileCaps = func(string) bool { return true }
	if err := checkStatic(f); err != nil {
		t.Errorf("newuidmap with file capabilities was refused: %v", err)
	}
}

// TestExplainProcMasked: a trial namespace that cannot mount its proc
// (a container's masked /proc paths) is explained with each runtime's
// option.
func TestExplainProcMasked(t *testing.T) {
	err := explainTrial(&ExitError{What: "helper", Code: 1, Message: procMasked + ": operation not permitted"}, fakeFacts())
	for _, w := range []string{"unmask=/proc/*", "systempaths=unconfined", "procMount", "Unmasked", "operation not permitted"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
}
