package steps

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// proxyEnv is the proxy settings every download of the build gets
// (bootstrap.ProxyEnv: the environment's http_proxy, https_proxy and
// no_proxy, else the host's apt configuration's Acquire::http::Proxy). They
// go into the environment of the commands only, never into the image's
// /etc/apt. The host's apt configuration is asked once per build, and only
// when the environment leaves a proxy unset.
func (b *Build) proxyEnv() []string {
	b.proxyOnce.Do(func() {
		aptShell := ""
		if bootstrap.NeedsHostAptProxy(os.LookupEnv) {
			aptShell = b.hostAptProxy()
		}
		b.proxy = bootstrap.ProxyEnv(os.LookupEnv, aptShell)
		// The names only: a proxy's URL may hold a password.
		var names []string
		for _, kv := range b.proxy {
			k, _, _ := strings.Cut(kv, "=")
			names = append(names, k)
		}
		if len(names) > 0 {
			b.Detail("Downloads use the proxy settings %s", strings.Join(names, ", "))
		}
	})
	return b.proxy
}

// hostAptProxy is the output of bootstrap.HostAptProxyQuery on the host,
// or "" when the host has no apt-config (not Debian) or it fails (a broken
// apt configuration: apt in the target does not read it, so the build goes
// on without its proxy, with a warning).
func (b *Build) hostAptProxy() string {
	argv := bootstrap.HostAptProxyQuery
	if _, err := exec.LookPath(argv[0]); err != nil {
		return ""
	}
	var out bytes.Buffer
	err := b.run(b.ctx, onHost, userns.Cmd{Argv: argv, Env: withLocale(os.Environ()), Stdout: &out, Stderr: io.Discard})
	if err != nil {
		b.Warnf("the host's apt configuration gave no proxy setting (%v): downloads go direct unless http_proxy is set", err)
		return ""
	}
	return out.String()
}
