package userns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
)

// Size is the number of ids mapped into every namespace: ids 0..Size-1.
const Size = 65536

// IDRange maps Size consecutive ids inside a namespace, starting at Inside,
// to host ids starting at Host.
type IDRange struct {
	Inside int // first id inside the namespace
	Host   int // first host id it maps to
	Size   int // number of ids
}

// IDMapping describes how ids inside every namespace of this package map to
// host ids. It is the same for every call in a process, and for every process
// run by the same host user, so a stage keeps consistent owners across steps
// and across builds.
type IDMapping struct {
	// UIDs and GIDs are the ranges written to uid_map and gid_map. They
	// cover namespace ids 0..Size-1 without gaps.
	UIDs, GIDs []IDRange
	// Direct is true when the caller is root and the identity mapping is
	// written directly; false when newuidmap/newgidmap are used.
	Direct bool
	// User is the host user name the mapping was derived from.
	User string
}

// HostUID returns the host uid that namespace uid id maps to.
func (m IDMapping) HostUID(id int) (int, bool) { return toHost(m.UIDs, id) }

// HostGID returns the host gid that namespace gid id maps to.
func (m IDMapping) HostGID(id int) (int, bool) { return toHost(m.GIDs, id) }

// InsideUID returns the namespace uid that host uid id appears as, if mapped.
func (m IDMapping) InsideUID(id int) (int, bool) { return toInside(m.UIDs, id) }

// InsideGID returns the namespace gid that host gid id appears as, if mapped.
func (m IDMapping) InsideGID(id int) (int, bool) { return toInside(m.GIDs, id) }

// String describes the mapping in uid_map notation, e.g.
// "uid 0->1000 (1), 1->100000 (65535); gid 0->1000 (1), 1->100000 (65535)".
func (m IDMapping) String() string {
	f := func(rs []IDRange) string {
		var parts []string
		for _, r := range rs {
			parts = append(parts, fmt.Sprintf("%d->%d (%d)", r.Inside, r.Host, r.Size))
		}
		return strings.Join(parts, ", ")
	}
	return "uid " + f(m.UIDs) + "; gid " + f(m.GIDs)
}

func toHost(rs []IDRange, id int) (int, bool) {
	for _, r := range rs {
		if id >= r.Inside && id < r.Inside+r.Size {
			return r.Host + id - r.Inside, true
		}
	}
	return 0, false
}

func toInside(rs []IDRange, id int) (int, bool) {
	for _, r := range rs {
		if id >= r.Host && id < r.Host+r.Size {
			return r.Inside + id - r.Host, true
		}
	}
	return 0, false
}

var (
	mappingOnce sync.Once
	mappingVal  IDMapping
	mappingErr  error
)

// Mapping returns the id mapping every namespace of this process uses. It is
// computed once (from the effective uid, /etc/subuid and /etc/subgid) and
// then cached. The error says what to configure when no usable mapping
// exists for an ordinary user.
func Mapping() (IDMapping, error) {
	mappingOnce.Do(func() {
		mappingVal, mappingErr = computeMapping(hostFacts())
	})
	return mappingVal, mappingErr
}

// facts are the inputs of the mapping and availability checks, gathered
// from the host by hostFacts and faked by the unit tests.
type facts struct {
	euid, egid int
	userName   string // "" when unknown
	userErr    error  // why userName is unknown
	subuid     func() (io.ReadCloser, error)
	subgid     func() (io.ReadCloser, error)
	readFile   func(path string) ([]byte, error)
	stat       func(path string) (os.FileInfo, error)
	lookPath   func(name string) (string, error)
	fileCaps   func(path string) bool
	nsSupport  bool // /proc/self/ns/user exists
}

func hostFacts() facts {
	f := facts{
		euid:     os.Geteuid(),
		egid:     os.Getegid(),
		subuid:   func() (io.ReadCloser, error) { return os.Open("/etc/subuid") },
		subgid:   func() (io.ReadCloser, error) { return os.Open("/etc/subgid") },
		readFile: os.ReadFile,
		stat:     os.Stat,
		lookPath: lookPathHost,
		fileCaps: hasFileCaps,
	}
	if u, err := user.LookupId(strconv.Itoa(f.euid)); err == nil {
		f.userName = u.Username
	} else {
		f.userErr = err
	}
	_, err := os.Lstat("/proc/self/ns/user")
	f.nsSupport = err == nil
	return f
}

// lookPathHost finds newuidmap/newgidmap on PATH or in the usual places
// (they live in /usr/bin, which may be missing from a minimal PATH).
func lookPathHost(name string) (string, error) {
	for _, dir := range append(strings.Split(os.Getenv("PATH"), ":"), "/usr/bin", "/bin", "/usr/sbin", "/sbin") {
		if dir == "" {
			continue
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH nor in /usr/bin", name)
}

func computeMapping(f facts) (IDMapping, error) {
	m, err := wantedMapping(f)
	if err != nil {
		return m, err
	}
	// The kernel accepts a line of uid_map only if its host ids lie within
	// one line of the parent namespace's map. Inside a container the
	// parent's map is often cut (rootless podman: "0 1000 1" then
	// "1 100000 65536"), so a single "0 0 65536" is refused with EPERM:
	// cut every range where the parent's lines are cut.
	m.UIDs = cutAlong(m.UIDs, parentMap(f, "/proc/self/uid_map"))
	m.GIDs = cutAlong(m.GIDs, parentMap(f, "/proc/self/gid_map"))
	return m, nil
}

func wantedMapping(f facts) (IDMapping, error) {
	if f.euid == 0 {
		id := []IDRange{{Inside: 0, Host: 0, Size: Size}}
		return IDMapping{UIDs: id, GIDs: id, Direct: true, User: "root"}, nil
	}
	name := f.userName
	if name == "" {
		name = strconv.Itoa(f.euid)
	}
	su, errU := subRange(f.subuid, "/etc/subuid", name, f.euid)
	sg, errG := subRange(f.subgid, "/etc/subgid", name, f.euid)
	if err := errors.Join(errU, errG); err != nil {
		return IDMapping{}, err
	}
	return IDMapping{
		UIDs: append([]IDRange{{0, f.euid, 1}}, su...),
		GIDs: append([]IDRange{{0, f.egid, 1}}, sg...),
		User: name,
	}, nil
}

// fillFrom maps namespace ids 1..Size-1 onto the subordinate ranges in
// their file order, or returns nil if they hold fewer than Size-1 ids.
// Several ranges are needed where one user's ids are split around its own
// uid, as inside a rootless container, which holds only 65537 ids.
func fillFrom(ranges [][2]int) []IDRange {
	var out []IDRange
	next := 1
	for _, rg := range ranges {
		if next == Size {
			break
		}
		n := min(rg[1], Size-next)
		if n <= 0 {
			continue
		}
		out = append(out, IDRange{Inside: next, Host: rg[0], Size: n})
		next += n
	}
	if next < Size {
		return nil
	}
	return out
}

// errNoRange is wrapped by the mapping error when the user has no usable
// subordinate id range.
var errNoRange = errors.New("no subordinate id range")

// subRange returns the ranges that give namespace ids 1..Size-1 host ids:
// the first range of at least Size-1 ids that file grants to the user (by
// name or by uid), else all of the user's ranges together if they hold
// enough.
func subRange(open func() (io.ReadCloser, error), file, name string, uid int) ([]IDRange, error) {
	free := 100000
	var ranges [][2]int
	r, err := open()
	if err == nil {
		var b []byte
		b, err = io.ReadAll(r)
		r.Close()
		if err == nil {
			free = firstFree(string(b))
			ranges, err = parseSubIDs(strings.NewReader(string(b)), name, uid)
			if err != nil {
				return nil, fmt.Errorf("userns: %s: %w", file, err)
			}
		}
	}
	opt := "--add-subuids"
	if strings.HasSuffix(file, "gid") {
		opt = "--add-subgids"
	}
	fix := fmt.Sprintf("add a line %q to %s (as root: usermod %s %d-%d %s)",
		fmt.Sprintf("%s:%d:%d", name, free, Size), file, opt, free, free+Size-1, name)
	if err != nil {
		return nil, fmt.Errorf("userns: reading %s: %w; %s", file, err, fix)
	}
	var small []string
	for _, rg := range ranges {
		if rg[1] >= Size-1 {
			return []IDRange{{Inside: 1, Host: rg[0], Size: Size - 1}}, nil
		}
		small = append(small, fmt.Sprintf("%d:%d", rg[0], rg[1]))
	}
	if rs := fillFrom(ranges); rs != nil {
		return rs, nil
	}
	if len(small) > 0 {
		return nil, fmt.Errorf("userns: %w of %d ids for user %s in %s (only %s); %s",
			errNoRange, Size-1, name, file, strings.Join(small, ", "), fix)
	}
	return nil, fmt.Errorf("userns: %w for user %s in %s; %s", errNoRange, name, file, fix)
}

// firstFree returns the first id at or above 100000 that follows every
// range of a /etc/subuid-format text, to suggest a range that overlaps none.
func firstFree(text string) int {
	free := 100000
	for _, line := range strings.Split(text, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && start+count > free {
			free = start + count
		}
	}
	return free
}

// parseSubIDs returns the [start, count] ranges of r (in /etc/subuid format,
// "user:start:count") that belong to name or uid, in file order.
func parseSubIDs(r io.Reader, name string, uid int) ([][2]int, error) {
	var out [][2]int
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: %q is not user:start:count", line, s)
		}
		if f[0] != name && f[0] != strconv.Itoa(uid) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || start < 0 || count < 0 {
			return nil, fmt.Errorf("line %d: %q has a bad start or count", line, s)
		}
		out = append(out, [2]int{start, count})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parentMap returns the lines of this process's own uid_map or gid_map
// (the namespace the new one is made in) as ranges, or nil when it cannot
// be read.
func parentMap(f facts, path string) []IDRange {
	if f.readFile == nil {
		return nil
	}
	b, err := f.readFile(path)
	if err != nil {
		return nil
	}
	var rs []IDRange
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) != 3 {
			continue
		}
		in, err1 := strconv.Atoi(fs[0])
		out, err2 := strconv.Atoi(fs[1])
		n, err3 := strconv.ParseInt(fs[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rs = append(rs, IDRange{Inside: in, Host: out, Size: int(n)})
	}
	return rs
}

// cutAlong splits every range of rs where its host ids cross from one range
// of parent (whose Inside ids are this namespace's, that is rs's host ids)
// to another. Host ids that parent does not map are left as they are: the
// kernel refuses them whatever the cut.
func cutAlong(rs, parent []IDRange) []IDRange {
	var out []IDRange
	for _, r := range rs {
		for r.Size > 0 {
			n := r.Size
			for _, p := range parent {
				end := p.Inside + p.Size
				if r.Host >= p.Inside && r.Host < end && r.Host+n > end {
					n = end - r.Host
				}
				if p.Inside > r.Host && p.Inside < r.Host+n {
					n = p.Inside - r.Host
				}
			}
			out = append(out, IDRange{Inside: r.Inside, Host: r.Host, Size: n})
			r.Inside, r.Host, r.Size = r.Inside+n, r.Host+n, r.Size-n
		}
	}
	return out
}
