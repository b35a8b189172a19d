package stage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Stage is one build's private staging tree. Each mounted filesystem of the
// spec is a directory under it; nothing is ever mounted on the host.
type Stage struct {
	// Dir is the stage's top directory (under Base's choice).
	Dir string
	// Why says why the stage is where it is.
	Why string
	// Reclaimed lists the stages of killed builds that New removed, and
	// ReclaimErr says why one could not be (for a warning).
	Reclaimed  []string
	ReclaimErr error
	next       int
	owner      *os.File // the locked owner record (stale.go)
}

// New creates a fresh stage directory where Base chooses, for a build
// whose files take at most need bytes.
func New(need int64) (*Stage, error) {
	// Stale stages first, from every place one can be (not only where
	// this build's goes): those in RAM count against the memory Base sees.
	reclaimed, rerr := ReclaimAll()
	base, why := Base(need)
	dir, err := os.MkdirTemp(base, stagePrefix)
	if err != nil {
		return nil, fmt.Errorf("creating the stage directory (set VMDB2_STAGE_DIR or TMPDIR to a writable place with room for the image's files): %w", err)
	}
	for _, sub := range []string{"fs", "trash", "meta"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("creating the stage: %w", err)
		}
	}
	st := &Stage{Dir: dir, Why: why, Reclaimed: reclaimed, ReclaimErr: rerr}
	if err := st.recordOwner(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating the stage: %w", err)
	}
	return st, nil
}

// NewFilesystemDir returns a new, empty directory standing for a mounted
// filesystem that is not nested in another (vmdb2's temporary mount point).
func (s *Stage) NewFilesystemDir() (string, error) {
	s.next++
	dir := filepath.Join(s.Dir, "fs", strconv.Itoa(s.next))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating a staging directory: %w", err)
	}
	return dir, nil
}

// MetaPath is a path for the build's own bookkeeping files (not part of
// any filesystem).
func (s *Stage) MetaPath(name string) string { return filepath.Join(s.Dir, "meta", name) }

// Remove deletes the whole stage, including files owned by ids of the
// build's user namespace that the calling user cannot delete directly.
func (s *Stage) Remove() error {
	if s == nil || s.Dir == "" {
		return nil
	}
	var err error
	if os.Geteuid() == 0 {
		err = os.RemoveAll(s.Dir)
	} else {
		err = userns.RemoveAll(s.Dir)
	}
	if err == nil && s.owner != nil {
		// Only now: a stage that could not be removed stays this
		// build's until it ends.
		s.owner.Close()
		s.owner = nil
	}
	return err
}

// fileOpHelper is the name of the helper that performs a FileOp inside the
// build's user namespace.
const fileOpHelper = "vmdb2-stage-fileop"

func init() {
	userns.RegisterHelper(fileOpHelper, func(args []string) error {
		data, err := readAllLimited(os.Stdin, 1<<30)
		if err != nil {
			return err
		}
		var op FileOp
		if err := json.Unmarshal(data, &op); err != nil {
			return fmt.Errorf("bad file operation: %w", err)
		}
		return op.apply()
	})
}

// Apply performs a file operation as root of the build's user namespace:
// directly when this program runs as root (whose namespace mapping is the
// identity), else in a helper process inside the namespace, so that owners
// such as uid 1000 or root-owned files come out as the spec says.
func Apply(ctx context.Context, op FileOp) error {
	if os.Geteuid() == 0 {
		return op.apply()
	}
	data, err := json.Marshal(op)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	err = userns.Run(ctx, userns.Cmd{Helper: fileOpHelper, Stdin: bytes.NewReader(data), Stderr: &stderr})
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
