// Command nsprobe is a tiny static program that the tests of package userns
// copy into a stage as its only binary, to look at the namespace from inside.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nsprobe id|chown|cat|devnull|escape|spawn|sleep|exit|hostname|write ...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "nsprobe:", err)
		os.Exit(1)
	}
}

// commands are nsprobe's commands by name.
var commands = map[string]func(args []string) error{
	"id":          cmdID,
	"chown":       cmdChown,
	"cat":         cmdCat,
	"modes":       cmdModes,
	"write":       cmdWrite,
	"devnull":     cmdDevnull,
	"escape":      cmdEscape,
	"spawn":       cmdSpawn,
	"spawn-exit":  cmdSpawnExit,
	"ignore-term": cmdIgnoreTerm,
	"mktree":      cmdMktree,
	"daemon":      cmdDaemon,
	"sleep":       cmdSleep,
	"exit":        cmdExit,
	"symlink":     cmdSymlink,
	"relink":      cmdRelink,
	"fds":         cmdFds,
	"fsync-pipe":  cmdFsyncPipe,
	"hostname":    cmdHostname,
}

func run(cmd string, args []string) error {
	f, ok := commands[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q", cmd)
	}
	return f(args)
}

func cmdID(args []string) error {
	fmt.Printf("uid=%d gid=%d euid=%d pid=%d\n", os.Getuid(), os.Getgid(), os.Geteuid(), os.Getpid())
	return nil
}

func cmdChown(args []string) error {
	uid, _ := strconv.Atoi(args[1])
	gid, _ := strconv.Atoi(args[2])
	if err := os.WriteFile(args[0], []byte("x"), 0o644); err != nil {
		return err
	}
	return os.Lchown(args[0], uid, gid)
}

func cmdCat(args []string) error {
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	os.Stdout.Write(b)
	return nil
}

func cmdModes(args []string) error {
	for _, p := range args {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		fmt.Printf("%s %v\n", p, st.Mode())
	}
	return nil
}

func cmdWrite(args []string) error {
	return os.WriteFile(args[0], []byte(args[1]), 0o644)
}

func cmdDevnull(args []string) error {
	st, err := os.Stat("/dev/null")
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeCharDevice == 0 {
		return fmt.Errorf("/dev/null is %v, not a character device", st.Mode())
	}
	if err := os.WriteFile("/dev/null", []byte("discarded"), 0); err != nil {
		return err
	}
	b, err := os.ReadFile("/dev/null")
	if err != nil || len(b) != 0 {
		return fmt.Errorf("reading /dev/null: %q %v", b, err)
	}
	f, err := os.Open("/dev/zero")
	if err != nil {
		return err
	}
	defer f.Close()
	buf := []byte{1, 2, 3}
	if _, err := f.Read(buf); err != nil || buf[0]|buf[1]|buf[2] != 0 {
		return fmt.Errorf("reading /dev/zero: %v %v", buf, err)
	}
	fmt.Println("devnull ok")
	return nil
}

func cmdEscape(args []string) error {
	// Each attempt may fail; none may reach the host.
	for _, p := range []string{"/host-canary", "../../../../../../host-canary", "/../host-canary"} {
		err := os.WriteFile(p, []byte("escaped"), 0o644)
		fmt.Printf("write %s: %v\n", p, err)
	}
	// The classic chroot escape: chroot into a subdirectory while
	// keeping the working directory outside it, then walk up.
	os.Mkdir("/escape-dir", 0o755)
	err := syscall.Chroot("/escape-dir")
	fmt.Printf("chroot: %v\n", err)
	for i := 0; i < 64; i++ {
		syscall.Chdir("..")
	}
	err = syscall.Chroot(".")
	fmt.Printf("chroot .: %v\n", err)
	err = os.WriteFile("/host-canary", []byte("escaped"), 0o644)
	fmt.Printf("write after chroot trick: %v\n", err)
	return nil
}

func cmdSpawn(args []string) error {
	// Two background sleepers: one plain child, one daemon that
	// detaches (setsid) and whose parent exits.
	c1 := exec.Command("/nsprobe", "sleep", "1000")
	if err := c1.Start(); err != nil {
		return err
	}
	c2 := exec.Command("/nsprobe", "daemon")
	if err := c2.Run(); err != nil {
		return err
	}
	fmt.Println("ready")
	time.Sleep(1000 * time.Second)
	return nil
}

func cmdSpawnExit(args []string) error {
	c1 := exec.Command("/nsprobe", "sleep", "1000")
	if err := c1.Start(); err != nil {
		return err
	}
	if err := exec.Command("/nsprobe", "daemon").Run(); err != nil {
		return err
	}
	n, _ := strconv.Atoi(args[0])
	os.Exit(n)
	return nil
}

func cmdIgnoreTerm(args []string) error {
	signal.Ignore(syscall.SIGTERM)
	fmt.Println("ready")
	time.Sleep(1000 * time.Second)
	return nil
}

func cmdMktree(args []string) error {
	// A tree a host user cannot remove: owners from the mapped range
	// and a read-only directory.
	for _, d := range []string{"/tree/a/b", "/tree/locked"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		path     string
		uid, gid int
	}{{"/tree/a/b/f1000", 1000, 1000}, {"/tree/a/f42", 0, 42}, {"/tree/locked/f", 65534, 65534}, {"/tree/a/b", 1000, 1000}, {"/tree/locked", 1000, 1000}} {
		if _, err := os.Stat(f.path); err != nil {
			if err := os.WriteFile(f.path, []byte("x"), 0o600); err != nil {
				return err
			}
		}
		if err := os.Lchown(f.path, f.uid, f.gid); err != nil {
			return err
		}
	}
	return os.Chmod("/tree/locked", 0o500)
}

func cmdDaemon(args []string) error {
	c := exec.Command("/nsprobe", "sleep", "1000")
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return c.Start()
}

func cmdSleep(args []string) error {
	n, _ := strconv.Atoi(args[0])
	time.Sleep(time.Duration(n) * time.Second)
	return nil
}

func cmdExit(args []string) error {
	n, _ := strconv.Atoi(args[0])
	os.Exit(n)
	return nil
}

func cmdSymlink(args []string) error {
	// Replace args[1] by a symlink to args[0], as ln -sf does.
	if err := os.Remove(args[1]); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Symlink(args[0], args[1])
}

func cmdRelink(args []string) error {
	// Move args[1] aside and put a symlink to args[0] in its place,
	// as a package that replaces a directory by a link does.
	if err := os.Rename(args[1], args[1]+".old"); err != nil {
		return err
	}
	return os.Symlink(args[0], args[1])
}

func cmdFds(args []string) error {
	// The descriptors (from 3 on) of process args[0], with what
	// they lead to.
	dir := "/proc/" + args[0] + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if n, _ := strconv.Atoi(e.Name()); n < 3 {
			continue
		}
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // the descriptor ReadDir used, now closed
		}
		fmt.Printf("%s %s\n", e.Name(), l)
	}
	return nil
}

func cmdFsyncPipe(args []string) error {
	// fsync of a pipe fails with EINVAL unless the call is filtered.
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		return err
	}
	fmt.Printf("fsync=%v fdatasync=%v\n", syscall.Fsync(p[1]), syscall.Fdatasync(p[1]))
	return nil
}

func cmdHostname(args []string) error {
	h, err := os.Hostname()
	if err != nil {
		return err
	}
	fmt.Println(h)
	return nil
}
