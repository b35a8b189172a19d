// Command luksencrypt measures the two ways of encrypting a payload into a
// LUKS2 container offline, on a 4 GiB container by default: this
// project's (cryptsetup luksFormat for the header, package luks's
// aes-xts-plain64 in Go for the data) and cryptsetup's own offline
// encryption (`cryptsetup reencrypt --encrypt --force-offline-reencrypt`).
// Each runs as a child process; it prints the wall time and the child's
// peak resident memory.
//
//	go run ./bench/luksencrypt [-size 4096] [-dir /var/tmp]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/partition/luks"
)

// cheapPBKDF keeps the key slot's cost out of the figures.
var cheapPBKDF = []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}

func main() {
	sizeMiB := flag.Int64("size", 4096, "container size in MiB")
	dir := flag.String("dir", os.TempDir(), "directory for the scratch files (needs twice the size free)")
	child := flag.String("child", "", "internal: run one method (go) in this process")
	flag.Parse()
	size := *sizeMiB << 20
	if *child != "" {
		check(encryptInGo(*child, size))
		return
	}
	work, err := os.MkdirTemp(*dir, "luksbench-")
	check(err)
	defer os.RemoveAll(work)
	self, err := os.Executable()
	check(err)
	fmt.Printf("LUKS2 aes-xts-plain64 (512-bit key, 512-byte sectors), %d MiB container, %d CPUs\n", *sizeMiB, numCPU())
	measure("Go (package luks, 2 workers)", exec.Command(self, "-child", work, "-size", fmt.Sprint(*sizeMiB)))
	measure("cryptsetup reencrypt --encrypt", reencryptCommand(work, size))
}

// encryptInGo formats a header and encrypts a sparse cleartext of the
// container's data size into a container file, as a build does.
func encryptInGo(work string, size int64) error {
	hdrDir := filepath.Join(work, "go-header")
	if err := os.Mkdir(hdrDir, 0o700); err != nil {
		return err
	}
	c, err := luks.Format(context.Background(), luks.Spec{Size: size, Passphrase: []byte("bench"),
		UUID: "00000000-0000-4000-8000-000000000001", Options: cheapPBKDF, Dir: hdrDir, Run: fstool.Exec})
	if err != nil {
		return err
	}
	clear, err := scratch(filepath.Join(work, "go-clear"), c.DataSize(size))
	if err != nil {
		return err
	}
	defer clear.Close()
	out, err := scratch(filepath.Join(work, "go-container"), size)
	if err != nil {
		return err
	}
	defer out.Close()
	_, err = c.Encrypt(clear, out, 0, size)
	return err
}

// reencryptCommand is cryptsetup encrypting a file in place that holds the
// cleartext, shifting it to make room for the header.
func reencryptCommand(work string, size int64) *exec.Cmd {
	f, err := scratch(filepath.Join(work, "cs-container"), size)
	check(err)
	f.Close()
	key := filepath.Join(work, "key")
	check(os.WriteFile(key, []byte("bench"), 0o600))
	args := append([]string{"reencrypt", "--encrypt", "--type", "luks2", "--reduce-device-size", "32M",
		"--force-offline-reencrypt", "--disable-locks", "--batch-mode", "--key-file", key,
		"--cipher", "aes-xts-plain64", "--key-size", "512", "--sector-size", "512"}, cheapPBKDF...)
	cmd := exec.Command("cryptsetup", append(args, filepath.Join(work, "cs-container"))...)
	cmd.Dir = work
	return cmd
}

func scratch(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = f.Truncate(size)
	}
	return f, err
}

func measure(label string, cmd *exec.Cmd) {
	cmd.Stderr = os.Stderr
	start := time.Now()
	check(cmd.Run())
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	fmt.Printf("%-32s %6.1f s wall, %6.1f s CPU, peak RSS %5.1f MiB\n", label, wall.Seconds(),
		(time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds(), float64(ru.Maxrss)/1024)
}

func numCPU() int { return runtime.NumCPU() }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "luksencrypt:", err)
		os.Exit(1)
	}
}
