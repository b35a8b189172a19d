package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// Ansible's chroot connection runs every command of a task (and its file
// transfers, as `dd`) as `CHROOT_EXE DIR SHELL -c COMMAND`. Here CHROOT_EXE
// is this program under the name ansibleChrootName: it passes the command,
// with its environment and standard streams, over a socket to the build,
// which runs it confined to the root filesystem's tree like a `chroot`
// step's commands (in the build's namespace, with its /proc, /dev, /sys,
// /run, /tmp, resolv.conf and policy-rc.d), and sends back its exit
// status. The build runs it rather than ansible-playbook's namespace
// because a user namespace made inside that one could not map the build's
// ids.

// ansibleChrootName is the name under which this program serves as the
// chroot program of Ansible's chroot connection (ANSIBLE_CHROOT_EXE).
const ansibleChrootName = "vmdb2-ansible-chroot"

// ansibleSocketEnv names the build's socket for the chroot program.
const ansibleSocketEnv = "VMDB2_ANSIBLE_CHROOT_SOCKET"

// maxRequest bounds a command request (its arguments and environment).
const maxRequest = 1 << 20

type chrootRequest struct {
	Root string
	Argv []string
	Env  []string
}

type chrootReply struct {
	Exit  int
	Error string
}

// ansibleChroot serves the chroot program for one ansible step: it makes
// the program (a link to this one) and the socket in a new directory of
// meta, and returns the environment ansible-playbook needs and the
// function that stops serving and removes the directory.
func (b *Build) ansibleChroot(meta, root string) (env []string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("finding this program for Ansible's chroot connection: %w", err)
	}
	dir, err := os.MkdirTemp(meta, ansibleFilePrefix+"chroot-*")
	if err != nil {
		return nil, nil, fmt.Errorf("creating Ansible's chroot program: %w", err)
	}
	prog, sock := filepath.Join(dir, ansibleChrootName), filepath.Join(dir, "socket")
	if len(sock) >= len(unix.RawSockaddrUnix{}.Path) {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("the stage's path %s is too long for a socket: set VMDB2_STAGE_DIR to a shorter directory", meta)
	}
	if err := os.Symlink(self, prog); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("creating Ansible's chroot program: %w", err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("Ansible's chroot connection: %w", err)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.serveChroot(ctx, conn, root)
			}()
		}
	}()
	stop = func() {
		cancel()
		ln.Close()
		wg.Wait()
		os.RemoveAll(dir)
	}
	return []string{"ANSIBLE_CHROOT_EXE=" + prog, ansibleSocketEnv + "=" + sock}, stop, nil
}

// serveChroot runs one command of the chroot program, confined to root,
// until it ends, ctx is done or the program goes away.
func (b *Build) serveChroot(ctx context.Context, conn *net.UnixConn, root string) {
	defer conn.Close()
	req, files, err := readChrootRequest(conn)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	reply := func(r chrootReply) {
		if data, err := json.Marshal(r); err == nil {
			_, _ = conn.Write(data)
		}
	}
	switch {
	case err != nil:
		reply(chrootReply{Exit: 125, Error: err.Error()})
		return
	case filepath.Clean(req.Root) != filepath.Clean(root):
		reply(chrootReply{Exit: 125, Error: fmt.Sprintf("only %s can be entered, not %s", root, req.Root)})
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// The program sends nothing more: a read returns when it is gone.
		_, _ = conn.Read(make([]byte, 1))
		cancel()
	}()
	err = b.run(ctx, passThrough, userns.Cmd{Root: root, Argv: req.Argv, Env: req.Env, Virtual: true,
		Stdin: files[0], Stdout: files[1], Stderr: files[2]})
	var ee *userns.ExitError
	switch {
	case err == nil:
		reply(chrootReply{})
	case errors.As(err, &ee) && ee.Message == "" && ee.Signal != 0:
		reply(chrootReply{Exit: 128 + int(ee.Signal)})
	case errors.As(err, &ee) && ee.Message == "":
		reply(chrootReply{Exit: ee.Code})
	default:
		reply(chrootReply{Exit: 125, Error: err.Error()})
	}
}

// readChrootRequest reads a request and the three standard streams that
// come with it.
func readChrootRequest(conn *net.UnixConn) (chrootRequest, []*os.File, error) {
	var req chrootRequest
	buf, oob := make([]byte, maxRequest), make([]byte, unix.CmsgSpace(3*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return req, nil, fmt.Errorf("reading the request: %w", err)
	}
	var files []*os.File
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err == nil && len(msgs) == 1 {
		fds, _ := unix.ParseUnixRights(&msgs[0])
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "stream"))
		}
	}
	switch {
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		return req, files, errors.New("the request is too large")
	case len(files) != 3:
		return req, files, errors.New("the request must carry the three standard streams")
	}
	if err := json.Unmarshal(buf[:n], &req); err != nil || len(req.Argv) == 0 {
		return req, files, fmt.Errorf("bad request (%v)", err)
	}
	return req, files, nil
}

// AnsibleChroot acts as chroot(8) for Ansible's chroot connection when this
// program was started under ansibleChrootName (args is os.Args: the name,
// the root filesystem's tree, then the command): the build that made it
// runs the command in the tree (see above). It returns the command's exit
// status (128+N when killed by signal N, 125 when it could not be run) and
// true; for any other name it returns false.
func AnsibleChroot(args []string) (int, bool) {
	if len(args) == 0 || filepath.Base(args[0]) != ansibleChrootName {
		return 0, false
	}
	code, err := askBuild(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ansibleChrootName, err)
	}
	return code, true
}

func askBuild(args []string) (int, error) {
	if len(args) < 3 {
		return 125, fmt.Errorf("usage: %s DIRECTORY COMMAND [ARG]...", ansibleChrootName)
	}
	sock := os.Getenv(ansibleSocketEnv)
	if sock == "" {
		return 125, errors.New("not started by a vmdb2 ansible step (" + ansibleSocketEnv + " is not set)")
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		return 125, fmt.Errorf("reaching the build: %w", err)
	}
	defer conn.Close()
	req, err := json.Marshal(chrootRequest{Root: args[1], Argv: args[2:], Env: os.Environ()})
	if err != nil {
		return 125, err
	}
	rights := unix.UnixRights(int(os.Stdin.Fd()), int(os.Stdout.Fd()), int(os.Stderr.Fd()))
	if _, _, err := conn.WriteMsgUnix(req, rights, nil); err != nil {
		return 125, fmt.Errorf("asking the build: %w", err)
	}
	// One message: read it whole (a shorter read would cut it).
	buf := make([]byte, maxRequest)
	n, err := conn.Read(buf)
	var r chrootReply
	if err == nil {
		err = json.Unmarshal(buf[:n], &r)
	}
	if err != nil {
		return 125, fmt.Errorf("the build did not answer: %w", err)
	}
	if r.Error != "" {
		return r.Exit, errors.New(r.Error)
	}
	return r.Exit, nil
}
