package bootstrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vmdb2-go/vmdb2/internal/testreq"
)

// TestProxyPassedOn: the host's http_proxy, https_proxy and no_proxy reach
// the bootstrap engine and apt inside the namespace (a fleet's downloads go
// through one apt-cacher-ng), and a spec's own environment overrides them.
func TestProxyPassedOn(t *testing.T) {
	t.Setenv("http_proxy", "http://apt-cacher.test:3142")
	t.Setenv("https_proxy", "http://apt-cacher.test:3142")
	t.Setenv("no_proxy", "localhost")
	for name, env := range map[string][]string{"engine": engineEnv(nil), "apt": aptEnv(nil)} {
		for _, want := range []string{"http_proxy=http://apt-cacher.test:3142", "https_proxy=http://apt-cacher.test:3142", "no_proxy=localhost"} {
			if !slices.Contains(env, want) {
				t.Errorf("%s environment %q lacks %q", name, env, want)
			}
		}
	}
	env := aptEnv([]string{"http_proxy=http://other.test:3142"})
	if !slices.Contains(env, "http_proxy=http://other.test:3142") || slices.Contains(env, "http_proxy=http://apt-cacher.test:3142") {
		t.Errorf("an explicit http_proxy did not replace the host's: %q", env)
	}
}

// TestProxyEnv: the environment's proxy wins (lower case before upper
// case); the host's apt configuration fills in what it leaves unset; an
// empty variable turns the proxy off; apt's DIRECT is no proxy.
func TestProxyEnv(t *testing.T) {
	aptShell := "http_proxy='http://apt-cacher.test:3142/'\nhttps_proxy='http://a'\\''b.test:3142'\n"
	for _, c := range []struct {
		name string
		env  map[string]string
		apt  string
		want []string
	}{
		{"nothing", nil, "", nil},
		{"lower case", map[string]string{"http_proxy": "http://l.test", "HTTP_PROXY": "http://u.test"}, "",
			[]string{"http_proxy=http://l.test"}},
		{"upper case", map[string]string{"HTTP_PROXY": "http://u.test", "NO_PROXY": "localhost"}, "",
			[]string{"http_proxy=http://u.test", "no_proxy=localhost"}},
		{"host apt", nil, aptShell,
			[]string{"http_proxy=http://apt-cacher.test:3142/", "https_proxy=http://a'b.test:3142"}},
		{"environment before apt", map[string]string{"http_proxy": "http://env.test"}, aptShell,
			[]string{"http_proxy=http://env.test", "https_proxy=http://a'b.test:3142"}},
		{"empty turns off", map[string]string{"http_proxy": ""}, aptShell,
			[]string{"http_proxy=", "https_proxy=http://a'b.test:3142"}},
		{"DIRECT", nil, "http_proxy='DIRECT'\n", nil},
		{"not apt-config's output", nil, "http_proxy=$(reboot)\nhttps_proxy='unterminated\n", nil},
	} {
		lookup := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
		if got := ProxyEnv(lookup, c.apt); !slices.Equal(got, c.want) {
			t.Errorf("%s: ProxyEnv = %q, want %q", c.name, got, c.want)
		}
	}
	both := func(k string) (string, bool) { return "http://p.test", k == "HTTP_PROXY" || k == "https_proxy" }
	if NeedsHostAptProxy(both) {
		t.Error("the apt configuration is asked although the environment sets both proxies")
	}
	if !NeedsHostAptProxy(func(string) (string, bool) { return "", false }) {
		t.Error("the apt configuration is not asked although the environment sets no proxy")
	}
}

// TestHostAptProxyQuery: apt-config prints the host's proxy in the form
// ProxyEnv reads (APT_CONFIG is read as apt reads it).
func TestHostAptProxyQuery(t *testing.T) {
	testreq.NeedTools(t, "apt-config")
	conf := filepath.Join(t.TempDir(), "apt.conf")
	if err := os.WriteFile(conf, []byte("Acquire::http::Proxy \"http://cache.test:3142\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(HostAptProxyQuery[0], HostAptProxyQuery[1:]...)
	cmd.Env = append(os.Environ(), "APT_CONFIG="+conf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got := ProxyEnv(func(string) (string, bool) { return "", false }, string(out))
	if !slices.Contains(got, "http_proxy=http://cache.test:3142") {
		t.Errorf("ProxyEnv of %q = %q", out, got)
	}
}
