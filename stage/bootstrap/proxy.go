package bootstrap

import (
	"os"
	"strings"
)

// HostAptProxyQuery is the host command whose output ProxyEnv reads the
// host's apt proxy settings from: `apt-config shell` prints each option as
// NAME='value' (nothing for an option that is not set), after reading the
// host's whole apt configuration (APT_CONFIG, /etc/apt/apt.conf.d) as apt
// itself would.
var HostAptProxyQuery = []string{"apt-config", "shell",
	"http_proxy", "Acquire::http::Proxy",
	"https_proxy", "Acquire::https::Proxy"}

// proxyVars are the variables that choose a proxy for downloads, in the
// spelling wget (debootstrap) and apt read.
var proxyVars = []string{"http_proxy", "https_proxy", "no_proxy"}

// NeedsHostAptProxy reports whether ProxyEnv would use the output of
// HostAptProxyQuery: when the environment (lookup) leaves http_proxy or
// https_proxy unset.
func NeedsHostAptProxy(lookup func(string) (string, bool)) bool {
	_, http := proxyFromEnv(lookup, "http_proxy")
	_, https := proxyFromEnv(lookup, "https_proxy")
	return !http || !https
}

// ProxyEnv returns the proxy settings (KEY=VALUE) that every download of a
// build gets — debootstrap's wget, mmdebstrap's and the target's apt, and
// the commands of chroot steps — so that a fleet's downloads go through one
// cache such as apt-cacher-ng without the image remembering it:
//
//   - http_proxy, https_proxy and no_proxy from the environment (lookup),
//     the lower-case spelling first, else the upper-case one that Docker
//     and many CI systems set (wget and apt read only the lower-case one);
//   - else, for http_proxy and https_proxy, the host's apt configuration's
//     Acquire::http::Proxy and Acquire::https::Proxy, given as aptShell,
//     the output of HostAptProxyQuery ("" when it was not run). "DIRECT"
//     (apt's word for no proxy) is no proxy.
//
// A variable set but empty in the environment is kept empty: it turns a
// proxy off, and the host's apt configuration does not turn it on again.
func ProxyEnv(lookup func(string) (string, bool), aptShell string) []string {
	fromApt := parseAptShell(aptShell)
	var env []string
	for _, k := range proxyVars {
		v, ok := proxyFromEnv(lookup, k)
		if !ok {
			v, ok = fromApt[k]
			ok = ok && v != "" && !strings.EqualFold(v, "DIRECT")
		}
		if ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// proxyFromEnv looks k up in its lower-case spelling, then in upper case.
func proxyFromEnv(lookup func(string) (string, bool), k string) (string, bool) {
	if v, ok := lookup(k); ok {
		return v, true
	}
	return lookup(strings.ToUpper(k))
}

// hostProxyEnv is ProxyEnv of this process's environment alone, for
// callers of the package that give no Env of their own.
func hostProxyEnv() []string { return ProxyEnv(os.LookupEnv, "") }

// parseAptShell reads apt-config shell's NAME='value' lines; a value is
// quoted for sh (see unquoteSh).
func parseAptShell(out string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		name, quoted, ok := strings.Cut(line, "=")
		if !ok || name == "" {
			continue
		}
		if v, ok := unquoteSh(quoted); ok {
			vars[name] = v
		}
	}
	return vars
}

// unquoteSh undoes sh's single quotes and backslashes, as in apt-config's
// quoting of a value with a single quote:
//
//	'a'\''b'    is    a'b
//
// Anything else (a $, a space outside quotes) is not apt-config's output
// and is refused.
func unquoteSh(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '\\':
			if i+1 == len(s) {
				return "", false
			}
			i++
			b.WriteByte(s[i])
		default:
			if strings.IndexByte(" \t$`\"", c) >= 0 {
				return "", false
			}
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
