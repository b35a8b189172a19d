package stage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A build killed with SIGKILL (or by the OOM killer, or a power cut of a
// container) cannot remove its stage, and a stage in /dev/shm holds memory
// until it is removed. So every stage records its builder, and the next
// build reclaims the stages of builders that are gone, wherever a stage
// can be (Places).
//
// A stage is its builder's while the builder holds an flock(2) on the
// stage's owner record (the kernel drops it when the builder dies, however
// it dies) and the process the record names (pid and start time) is alive;
// a stage is reclaimed only when both say the builder is gone. The lock
// tells a live build in another PID namespace (a container sharing /tmp)
// from a dead one; the pid check keeps the stages of older versions of
// this program, which took no lock, while they run. The record appears
// already locked (it is written and locked under a temporary name, then
// renamed), and a stage without one is never reclaimed, so a build that is
// still creating its stage is safe too.

const ownerFile = "owner" // in meta/: "<pid> <start time in clock ticks>"

// stagePrefix starts the name of every stage directory.
const stagePrefix = "vmdb2-stage-"

// processStart is field 22 of /proc/<pid>/stat (the start time), which
// tells a live process from a later one reusing its pid.
func processStart(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	// The command name (field 2) may hold spaces; fields after it don't.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", false
	}
	return f[19], true
}

// recordOwner writes this process's identity into the stage and keeps the
// record locked until Remove (or this process's death).
func (s *Stage) recordOwner() error {
	start, ok := processStart(os.Getpid())
	if !ok {
		start = "0"
	}
	f, err := os.CreateTemp(s.MetaPath(""), ownerFile+".*")
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("locking the stage's owner record: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d %s\n", os.Getpid(), start)
	if err == nil {
		err = os.Rename(f.Name(), s.MetaPath(ownerFile))
	}
	if err != nil {
		f.Close()
		return err
	}
	s.owner = f
	return nil
}

// Places returns every directory a stage of this user can be in: /dev/shm,
// $VMDB2_STAGE_DIR, $TMPDIR and /tmp (each once).
func Places() []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range []string{RAMDir, os.Getenv("VMDB2_STAGE_DIR"), os.Getenv("TMPDIR"), "/tmp"} {
		if d == "" {
			continue
		}
		d = filepath.Clean(d)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// ReclaimAll reclaims the stages of killed builds from every place in
// Places (see ReclaimStale).
func ReclaimAll() ([]string, error) {
	var removed []string
	var errs []error
	for _, base := range Places() {
		r, err := ReclaimStale(base)
		removed = append(removed, r...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// ReclaimStale removes the stages under base whose builders are gone and
// which belong to the calling user, and returns their paths. Stages without
// an owner record (an older version, or a build still starting) are left.
func ReclaimStale(base string) ([]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, nil
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagePrefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		ok, err := reclaimOne(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing the stage %s of a build that was killed: %w", dir, err))
		}
		if ok {
			removed = append(removed, dir)
		}
	}
	return removed, errors.Join(errs...)
}

// reclaimOne removes the stage dir if it is the calling user's and its
// builder is gone, holding the builder's lock meanwhile so that two builds
// never reclaim one stage at once.
func reclaimOne(dir string) (bool, error) {
	var st syscall.Stat_t
	if syscall.Lstat(dir, &st) != nil || int(st.Uid) != os.Geteuid() {
		return false, nil
	}
	f, err := os.Open(filepath.Join(dir, "meta", ownerFile))
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if builderAlive(f) {
		return false, nil
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false, nil // its builder lives (elsewhere), or another build reclaims it
	}
	if err := (&Stage{Dir: dir}).Remove(); err != nil {
		return false, err
	}
	return true, nil
}

// builderAlive reports whether the owner record names a live process, or
// cannot be read (then it is left alone).
func builderAlive(f *os.File) bool {
	b := make([]byte, 64)
	n, _ := f.ReadAt(b, 0)
	fields := strings.Fields(string(b[:n]))
	if len(fields) != 2 {
		return true
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return true
	}
	start, alive := processStart(pid)
	return alive && start == fields[1]
}
