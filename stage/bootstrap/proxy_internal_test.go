package bootstrap

import (
	"slices"
	"testing"
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
