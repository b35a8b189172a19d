package userns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// Carry holds the mounts that commands run with KeepMounts left inside
// their Tree, for the later commands given the same Carry: each is a
// detached copy of the mount tree (open_tree), which keeps its files (a
// tmpfs's) and its source (a bind's) as they were, except proc, of which
// only the place is kept (each namespace gets a fresh proc: one of a gone
// PID namespace shows no process). A detached mount is in no mount
// namespace: nothing of a Carry is ever on the host's mount table, and
// Close frees it. The zero value is an empty Carry, safe for concurrent
// use (the last command to end sets what is kept).
type Carry struct {
	mu     sync.Mutex
	mounts []carried
}

type carried struct {
	info carriedInfo
	f    *os.File // nil for proc
}

// carriedInfo is what the protocol says of a carried mount.
type carriedInfo struct {
	Target string `json:"target"` // image path inside the tree
	Proc   bool   `json:"proc,omitempty"`
	File   bool   `json:"file,omitempty"` // a bind of a file, not a directory
}

// Targets lists the image paths of the carried mounts, sorted.
func (c *Carry) Targets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.mounts {
		out = append(out, m.info.Target)
	}
	sort.Strings(out)
	return out
}

// Close drops every carried mount.
func (c *Carry) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	closeCarried(c.mounts)
	c.mounts = nil
	return nil
}

func closeCarried(ms []carried) {
	for _, m := range ms {
		if m.f != nil {
			m.f.Close()
		}
	}
}

func (c *Carry) infos() []carriedInfo {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []carriedInfo
	for _, m := range c.mounts {
		out = append(out, m.info)
	}
	return out
}

func (c *Carry) replace(ms []carried) {
	c.mu.Lock()
	defer c.mu.Unlock()
	closeCarried(c.mounts)
	c.mounts = ms
}

// lend passes the carried mounts' descriptors (none for proc) on sock, one
// message each, in the order of infos, for the namespace's init to attach
// before the command starts. An attached mount is no longer detached (and
// a detached one of another namespace cannot be copied), so init sends
// back, for each in order, a detached copy of what it attached (or none:
// keep this one); lend waits for them, holding the Carry, and drops what
// init did not give back before it ended.
func (c *Carry) lend(sock int, infos []carriedInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !sameInfos(c.mounts, infos) {
		return // changed since Run read them: init fails to receive
	}
	for _, m := range c.mounts {
		if m.f == nil {
			continue
		}
		if err := unix.Sendmsg(sock, []byte{0}, unix.UnixRights(int(m.f.Fd())), nil, 0); err != nil {
			break // init is gone: it gives nothing back
		}
	}
	var gone []int
	for i := range c.mounts {
		fd, dropped, err := receiveOne(sock)
		if err != nil {
			c.dropFrom(i)
			break
		}
		if dropped {
			gone = append(gone, i)
		}
		if fd >= 0 && c.mounts[i].f != nil {
			c.mounts[i].f.Close()
			c.mounts[i].f = os.NewFile(uintptr(fd), "mount on "+c.mounts[i].info.Target)
		} else if fd >= 0 {
			unix.Close(fd)
		}
	}
	for j := len(gone) - 1; j >= 0; j-- {
		if i := gone[j]; i < len(c.mounts) {
			closeCarried(c.mounts[i : i+1])
			c.mounts = append(c.mounts[:i], c.mounts[i+1:]...)
		}
	}
}

func sameInfos(ms []carried, infos []carriedInfo) bool {
	if len(ms) != len(infos) {
		return false
	}
	for i := range ms {
		if ms[i].info != infos[i] {
			return false
		}
	}
	return true
}

// dropFrom drops the mounts from index i on that init may have attached
// without giving them back (procs stay: nothing of them is lent).
func (c *Carry) dropFrom(i int) {
	kept := c.mounts[:i:i]
	for _, m := range c.mounts[i:] {
		if m.f == nil {
			kept = append(kept, m)
		} else {
			m.f.Close()
		}
	}
	c.mounts = kept
}

// receiveOne receives one message of a descriptor or none (-1), and
// whether it says the mount is gone.
func receiveOne(sock int) (int, bool, error) {
	fd, b, err := receiveFD(sock)
	return fd, b == dropMsg, err
}

// What a message of lend and returnCarried says besides its descriptor.
const (
	keepMsg = 0 // the descriptor passed, or with none: keep the one lent
	dropMsg = 1 // the mount lent was attached and could not be copied back
)

func receiveFD(sock int) (int, byte, error) {
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, b[:], oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, 0, err
		}
		if n == 0 && oobn == 0 {
			return -1, 0, errors.New("the namespace's init ended")
		}
		fds, err := rightsIn(oob[:oobn])
		if err != nil || len(fds) > 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return -1, 0, errors.New("a malformed message")
		}
		if len(fds) == 0 {
			return -1, b[0], nil
		}
		return fds[0], b[0], nil
	}
}

// returnCarried is init's side of lend once the carried mounts are attached
// (or the setup failed): for each, a detached copy of the attached mount
// (copies[i] >= 0), none (keep the one lent: it was not attached) or, for
// one attached but not copied (copies[i] == copyFailed), gone.
func returnCarried(sock int, copies []int) error {
	if carriedReturned {
		return nil
	}
	carriedReturned = true
	for _, fd := range copies {
		var oob []byte
		msg := byte(keepMsg)
		if fd >= 0 {
			oob = unix.UnixRights(fd)
		} else if fd == copyFailed {
			msg = dropMsg
		}
		if err := unix.Sendmsg(sock, []byte{msg}, oob, nil, 0); err != nil {
			return fmt.Errorf("passing the carried mounts back: %w", err)
		}
	}
	return nil
}

// carriedReturned is set in the namespace's init once returnCarried ran:
// it answers lend once.
var carriedReturned bool

// copyFailed marks a carried mount that was attached and not copied back.
const copyFailed = -2

// copyAttached returns a detached copy of the mount fd, just attached in
// this namespace, for returnCarried.
func copyAttached(fd int, target string) (int, error) {
	c, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, fmt.Errorf("copying the mount kept on %s: %w", target, err)
	}
	return c, nil
}

// sendKept is init's side of KeepMounts: one message per mount, its
// carriedInfo as JSON with the detached copy's descriptor (none for proc).
func sendKept(sock int, ms []carried) error {
	for _, m := range ms {
		b, err := json.Marshal(m.info)
		if err != nil {
			return err
		}
		var oob []byte
		if m.f != nil {
			oob = unix.UnixRights(int(m.f.Fd()))
		}
		if err := unix.Sendmsg(sock, b, oob, nil, 0); err != nil {
			return fmt.Errorf("passing the mount on %s back: %w", m.info.Target, err)
		}
	}
	return nil
}

// receiveKept reads, without waiting, what sendKept queued on sock before
// the namespace's init ended.
func receiveKept(sock int) ([]carried, error) {
	var out []carried
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || (err == nil && n == 0 && oobn == 0) {
			return out, nil
		}
		if err != nil {
			closeCarried(out)
			return nil, fmt.Errorf("receiving the kept mounts: %w", err)
		}
		m, err := keptMessage(buf[:n], oob[:oobn])
		if err != nil {
			closeCarried(out)
			return nil, err
		}
		out = append(out, m)
	}
}

func keptMessage(b, oob []byte) (carried, error) {
	var m carried
	fds, err := rightsIn(oob)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m.info); err != nil || len(fds) > 1 || (len(fds) == 0) != m.info.Proc {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return m, errors.New("receiving the kept mounts: a malformed message")
	}
	if len(fds) == 1 {
		m.f = os.NewFile(uintptr(fds[0]), "mount on "+m.info.Target)
	}
	return m, nil
}

// rightsIn returns the descriptors passed in the control messages oob.
func rightsIn(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("receiving a mount: %w", err)
	}
	var fds []int
	for _, msg := range msgs {
		r, err := unix.ParseUnixRights(&msg)
		if err == nil {
			fds = append(fds, r...)
		}
	}
	return fds, nil
}

// receiveCarried is init's side of lend: the descriptors of the carried
// mounts that are not proc, in order (-1 for a proc).
func receiveCarried(sock int, infos []carriedInfo) ([]int, error) {
	fds := make([]int, len(infos))
	for i := range fds {
		fds[i] = -1
	}
	for i, info := range infos {
		if info.Proc {
			continue
		}
		fd, _, err := receiveOne(sock)
		if err == nil && fd < 0 {
			err = errors.New("no descriptor")
		}
		if err != nil {
			return fds, fmt.Errorf("receiving the mount kept on %s: %w", info.Target, err)
		}
		fds[i] = fd
	}
	return fds, nil
}
