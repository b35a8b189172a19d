package rootfs

import (
	"bytes"
	"io"
	"math/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// decoder is one way of decoding a format: the host program or Go's.
type decoder struct {
	name string
	f    Format
	host *string // the program's variable, set to "" for Go's decoder
}

func (d decoder) use(t *testing.T) {
	t.Helper()
	if d.host == nil {
		return
	}
	saved := *d.host
	if strings.HasSuffix(d.name, "program") {
		if saved == "" {
			testreq.NeedTools(t, strings.ToLower(d.f.String()))
		}
	} else {
		*d.host = ""
	}
	t.Cleanup(func() { *d.host = saved })
}

var decoders = []decoder{
	{"gzip", Gzip, nil},
	{"xz program", Xz, &hostXz}, {"xz in Go", Xz, &hostXz},
	{"zstd program", Zstd, &hostZstd}, {"zstd in Go", Zstd, &hostZstd},
}

func compressed(t *testing.T, f Format, plain []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := compressor(f, &b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestZstdDecodersAgree checks that the zstd program and the Go decoder
// give the same stream and accept the same windows: up to 512 MiB (the Go
// decoder's limit), not 1 GiB.
func TestZstdDecodersAgree(t *testing.T) {
	testreq.NeedTools(t, "zstd")
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(3)).Read(data[:1<<19]) // half random, half zeros
	streams := map[string][]byte{"Go encoder": compressed(t, Zstd, data)}
	for _, long := range []string{"29", "30"} {
		cmd := exec.Command("zstd", "-q", "-c", "--long="+long)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		streams["window log "+long] = out
	}
	for name, s := range streams {
		var got [][]byte
		var errs []error
		for _, d := range decoders[3:] {
			saved := hostZstd
			if !strings.HasSuffix(d.name, "program") {
				hostZstd = ""
			}
			b, err := decodeAll(s)
			hostZstd = saved
			got, errs = append(got, b), append(errs, err)
		}
		wantErr := strings.HasSuffix(name, "30")
		for i, err := range errs {
			if (err != nil) != wantErr {
				t.Errorf("%s, %s: error %v, want an error: %v", name, decoders[3+i].name, err, wantErr)
			}
		}
		if !wantErr && (!bytes.Equal(got[0], data) || !bytes.Equal(got[1], data)) {
			t.Errorf("%s: a decoder gave other bytes", name)
		}
	}
}

func decodeAll(stream []byte) ([]byte, error) {
	r, _, err := decompressor(bytes.NewReader(stream))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
