package stage

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A build killed with SIGKILL (or by the OOM killer, or a power cut of a
// container) cannot remove its stage, and a stage in /dev/shm holds memory
// until it is removed. So every stage records its builder, and the next
// build reclaims the stages of builders that are gone.

const ownerFile = "owner" // in meta/: "<pid> <start time in clock ticks>"

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

// recordOwner writes this process's identity into the stage.
func (s *Stage) recordOwner() error {
	start, ok := processStart(os.Getpid())
	if !ok {
		return nil
	}
	return os.WriteFile(s.MetaPath(ownerFile), []byte(fmt.Sprintf("%d %s\n", os.Getpid(), start)), 0o644)
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
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "vmdb2-stage-") {
			continue
		}
		dir := filepath.Join(base, e.Name())
		var st syscall.Stat_t
		if syscall.Lstat(dir, &st) != nil || int(st.Uid) != os.Geteuid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "meta", ownerFile))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid <= 0 {
			continue
		}
		if start, alive := processStart(pid); alive && start == f[1] {
			continue
		}
		if err := (&Stage{Dir: dir}).Remove(); err != nil {
			return removed, fmt.Errorf("removing the stage %s of a build that was killed: %w", dir, err)
		}
		removed = append(removed, dir)
	}
	return removed, nil
}
