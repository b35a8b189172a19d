package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debootstrap041Spec uses the debootstrap keys vmdb2 0.28 and 0.41 added:
// exclude (tzdata is required, so minbase has it, and nothing in minbase
// depends on it) and tls_ca_certs (with ca-certificates included, whose
// update-ca-certificates adds the file to the trust store).
const debootstrap041Spec = `steps:
  - mkimg: "{{ output }}"
    size: 1G
  - mklabel: msdos
    device: "{{ output }}"
  - mkpart: primary
    device: "{{ output }}"
    start: 1MiB
    end: 100%
    tag: /
  - mkfs: ext4
    partition: /
  - mount: /
  - debootstrap: bookworm
    mirror: http://deb.debian.org/debian
    target: /
    variant: minbase
    include: [ca-certificates]
    exclude: [tzdata]
    tls_ca_certs: [corp.crt]
`

// TestDebootstrapExcludeAndCACerts builds with debootstrap's exclude and
// tls_ca_certs, as the ordinary user: the excluded package is not in the
// image, and the company CA is in the image's trust store as
// update-ca-certificates puts it there.
func TestDebootstrapExcludeAndCACerts(t *testing.T) {
	checkTools(t, "debootstrap", "mke2fs", "debugfs", "e2fsck")
	needMirror(t)
	parallelBuild(t)
	uid, gid := ordinaryUser(t)
	dir := writeWorkDir(t, debootstrap041Spec)
	certPEM := testCACert(t)
	if err := os.WriteFile(filepath.Join(dir, "corp.crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	chownTree(t, dir, uid, gid)
	start := time.Now()
	r := runAs(t, uid, gid, dir, []string{"TMPDIR=" + filepath.Join(dir, "tmp")}, userBinary(t), "spec.vmdb", "--output", "out.img")
	if r.code != 0 {
		t.Fatalf("build as %s: exit %d\n%s", testUser, r.code, r.stderr)
	}
	t.Logf("built as %s in %v", testUser, time.Since(start).Round(time.Second))
	img := filepath.Join(dir, "out.img")
	const off = 1 << 20
	status := debugfs(t, img, off, "cat /var/lib/dpkg/status")
	if strings.Contains(status, "\nPackage: tzdata\n") || !strings.Contains(status, "\nPackage: ca-certificates\n") {
		t.Error("the image's dpkg status has tzdata (excluded) or lacks ca-certificates (included)")
	}
	if st := debugfs(t, img, off, "stat /usr/local/share/ca-certificates/corp.crt"); !strings.Contains(st, "Type: regular") {
		t.Errorf("corp.crt was not copied into the target:\n%s", st)
	}
	if st := debugfs(t, img, off, "stat /etc/ssl/certs/corp.pem"); !strings.Contains(st, "Type: symlink") {
		t.Errorf("update-ca-certificates did not link corp.pem:\n%s", st)
	}
	body := strings.TrimSpace(string(certPEM))
	if bundle := debugfs(t, img, off, "cat /etc/ssl/certs/ca-certificates.crt"); !strings.Contains(bundle, body) {
		t.Error("the CA is not in the image's /etc/ssl/certs/ca-certificates.crt")
	}
	noStageLeft(t, filepath.Join(dir, "tmp"))
}

// testCACert makes a self-signed CA certificate in PEM.
func testCACert(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vmdb2 test company CA"},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
