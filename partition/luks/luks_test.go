package luks

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/fs/fstool"
	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

const testUUID = "0c0ffee0-1234-4321-8765-0123456789ab"

// cheapPBKDF keeps the tests' unlocks quick.
var cheapPBKDF = []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}

func needCryptsetup(t *testing.T) {
	_, err := exec.LookPath("cryptsetup")
	testreq.Need(t, testreq.Tools, err)
}

// pattern is cleartext that differs in every sector, so that a wrong IV
// or sector size shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

// formatAndEncrypt builds a container of size bytes in a file and returns
// it, the cleartext and the passphrase file.
func formatAndEncrypt(t *testing.T, size int64, opts []string) (string, []byte, string) {
	t.Helper()
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	pass := []byte("hunter2\n")
	c, err := Format(context.Background(), Spec{Size: size, Passphrase: pass, UUID: testUUID,
		Options: opts, Dir: work, Run: fstool.Exec})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(work); len(left) != 1 {
		t.Errorf("key files left in the work directory: %v", left)
	}
	clear := pattern(int(c.DataSize(size)))
	img := filepath.Join(dir, "container.img")
	out, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := c.Encrypt(bytes.NewReader(clear), out, 0, size); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, pass, 0o600)
	return img, clear, passFile
}

func cryptsetup(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("cryptsetup", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cryptsetup %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestEncryptDecryptsWithCryptsetup checks the container with tools not
// written here: luksDump reads the header, the passphrase opens the key
// slot, and cryptsetup's own offline decryption gives back the cleartext.
func TestEncryptDecryptsWithCryptsetup(t *testing.T) {
	needCryptsetup(t)
	for _, sector := range []string{"512", "4096"} {
		t.Run("sector-"+sector, func(t *testing.T) {
			const size = 24 << 20
			img, clear, pass := formatAndEncrypt(t, size, append(cheapPBKDF, "--sector-size", sector))
			dir := filepath.Dir(img)
			dump := cryptsetup(t, dir, "luksDump", img)
			for _, want := range []string{testUUID, "aes-xts-plain64", "sector: " + sector} {
				if !strings.Contains(dump, want) {
					t.Errorf("luksDump lacks %q:\n%s", want, dump)
				}
			}
			cryptsetup(t, dir, "open", "--test-passphrase", "--disable-locks", "--key-file", pass, img)
			hdr := filepath.Join(dir, "detached-header")
			cryptsetup(t, dir, "reencrypt", "--decrypt", "--force-offline-reencrypt", "--disable-locks",
				"--batch-mode", "--key-file", pass, "--header", hdr, img)
			got, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:len(clear)], clear) {
				t.Errorf("cryptsetup's decryption differs from the cleartext")
			}
		})
	}
}

func TestFormatRefusesWhatCannotWorkOffline(t *testing.T) {
	for _, opts := range [][]string{
		{"--integrity", "hmac-sha256"},
		{"--cipher", "xchacha20,aes-adiantum-plain64"},
		{"--cipher=serpent-xts-plain64"},
		{"--header", "x"},
		{"-caes-cbc-plain"},
		{"-dkey.txt"},
		{"-Mluks1"},
	} {
		if err := CheckOptions(opts); err == nil {
			t.Errorf("CheckOptions(%q) accepted", opts)
		}
	}
	if err := CheckOptions([]string{"--cipher", "aes-xts-plain64", "--sector-size", "4096", "--pbkdf-memory", "32768", "-caes-xts-plain64"}); err != nil {
		t.Errorf("CheckOptions refused the usual options: %v", err)
	}
	_, err := Format(context.Background(), Spec{Size: 32 << 20, Dir: t.TempDir(), Run: fstool.Exec})
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty passphrase: %v", err)
	}
}
