package steps

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vmdb2-go/vmdb2/stage"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// caCertDir is where debootstrap's tls_ca_certs go in the target, as in
// vmdb2 0.28: update-ca-certificates adds the .crt files found there to the
// target's trust store.
const caCertDir = "/usr/local/share/ca-certificates"

// maxCACert bounds a certificate file read from the host.
const maxCACert = 1 << 20

// checkCACerts refuses, before anything runs, tls_ca_certs that vmdb2
// refuses when its step runs: names without the .crt suffix
// update-ca-certificates looks for.
func checkCACerts(s *Step, report reportFunc) {
	for _, c := range s.Strings("tls_ca_certs") {
		if !strings.HasSuffix(c, ".crt") || filepath.Base(c) == ".crt" {
			report(s.KeyLine("tls_ca_certs"), Error, "%s: tls_ca_certs: %q does not have a \".crt\" suffix (update-ca-certificates only reads *.crt)", s.Kind.Name, c)
		}
	}
}

// installCACerts copies the host's certificate files (named as vmdb2 names
// them: relative to the current directory; read by this process, so as the
// user who runs the build) into the target's caCertDir under their base
// names, resolved inside the target, then runs update-ca-certificates
// there, as vmdb2 0.28 does after debootstrap. While debootstrap itself
// runs, the engine trusts what the host trusts, as vmdb2's does.
func (b *Build) installCACerts(dir string, certs []string) error {
	if len(certs) == 0 {
		return nil
	}
	for _, c := range certs {
		data, err := readHostCert(c)
		if err != nil {
			return err
		}
		target := caCertDir + "/" + filepath.Base(c)
		if err := b.FileOp(stage.FileOp{Op: "create-file", Root: dir, Path: target, Contents: data, Perm: 0o644}); err != nil {
			return fmt.Errorf("tls_ca_certs: %w", err)
		}
		b.Progress("Copied %s -> %s", c, target)
	}
	return b.InNamespace(userns.Cmd{Root: dir, Argv: []string{"update-ca-certificates"}, Env: targetEnv(), Virtual: true})
}

// readHostCert reads a regular file of at most maxCACert bytes (a FIFO or
// device named by the spec would block or never end).
func readHostCert(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("tls_ca_certs: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tls_ca_certs: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tls_ca_certs: %s is not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCACert+1))
	if err != nil {
		return nil, fmt.Errorf("tls_ca_certs: %w", err)
	}
	if len(data) > maxCACert {
		return nil, fmt.Errorf("tls_ca_certs: %s is larger than %d bytes: not a certificate", name, maxCACert)
	}
	return data, nil
}
