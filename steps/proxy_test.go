package steps

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// unsetProxies clears the proxy variables for the test (t.Setenv restores
// them afterwards).
func unsetProxies(t *testing.T) {
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// TestBuildProxyEnv: the tools that install packages get the host's apt
// proxy when the environment sets none, asked once per build; with the
// environment's proxies set, apt-config is not run at all.
func TestBuildProxyEnv(t *testing.T) {
	testreq.NeedTools(t, "apt-config")
	unsetProxies(t)
	conf := filepath.Join(t.TempDir(), "apt.conf")
	if err := os.WriteFile(conf, []byte("Acquire::http::Proxy \"http://cache.test:3142\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APT_CONFIG", conf)
	rec := &recorder{}
	b := NewBuild(&Plan{}, Settings{SourceDateEpoch: time.Unix(1700000000, 0)}, rec)
	want := []string{"http_proxy=http://cache.test:3142", "SOURCE_DATE_EPOCH=1700000000"}
	for range 2 {
		if env := b.buildEnv(); !slices.Equal(env, want) {
			t.Errorf("buildEnv = %q, want %q", env, want)
		}
	}
	if len(rec.execs) != 1 {
		t.Errorf("apt-config ran %d times, want once: %q", len(rec.execs), rec.execs)
	}

	t.Setenv("HTTP_PROXY", "http://env.test:3128")
	t.Setenv("https_proxy", "http://env.test:3129")
	rec = &recorder{}
	b = NewBuild(&Plan{}, Settings{}, rec)
	want = []string{"http_proxy=http://env.test:3128", "https_proxy=http://env.test:3129"}
	if env := b.proxyEnv(); !slices.Equal(env, want) {
		t.Errorf("proxyEnv = %q, want %q", env, want)
	}
	if len(rec.execs) != 0 {
		t.Errorf("apt-config ran although the environment sets both proxies: %q", rec.execs)
	}
}
