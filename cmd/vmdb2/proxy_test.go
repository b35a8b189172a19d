package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testProxy is a forward HTTP proxy for the tests' builds: it passes plain
// http requests on (to deb.debian.org) and counts them by the client's
// program, so a test can tell that debootstrap (wget) and apt went
// through it.
type testProxy struct {
	url    string
	mu     sync.Mutex
	counts map[string]int // "wget", "apt", "other"
}

func startTestProxy(t *testing.T) *testProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{url: "http://" + l.Addr().String(), counts: map[string]int{}}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4}
	srv := &http.Server{Handler: p.forwarder(tr)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return p
}

func (p *testProxy) forwarder(tr *http.Transport) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Scheme != "http" || r.URL.Host == "" {
			http.Error(w, "this proxy passes on plain http requests only", http.StatusBadRequest)
			return
		}
		p.count(r.UserAgent())
		out := r.Clone(r.Context())
		out.RequestURI = ""
		for _, h := range []string{"Proxy-Connection", "Proxy-Authorization", "Connection", "Keep-Alive"} {
			out.Header.Del(h)
		}
		resp, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
}

func (p *testProxy) count(agent string) {
	who := "other"
	switch {
	case strings.HasPrefix(agent, "Wget"):
		who = "wget"
	case strings.HasPrefix(agent, "Debian APT"):
		who = "apt"
	}
	p.mu.Lock()
	p.counts[who]++
	p.mu.Unlock()
}

// checkWentThrough fails the test unless apt made requests through p: the
// debootstrap step runs mmdebstrap, whose downloads are apt's as the apt
// step's are (qemu-debootstrap's wget would count as "wget").
func (p *testProxy) checkWentThrough(t *testing.T, build string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Logf("%s: requests through the proxy: %v", build, p.counts)
	if p.counts["apt"] == 0 {
		t.Errorf("%s: no request of apt went through the proxy (%v)", build, p.counts)
	}
}

// withoutProxies is the environment with no proxy variables, so that a
// build sees only the proxy its test gives it.
func withoutProxies() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, "http_proxy") || strings.EqualFold(k, "https_proxy") || strings.EqualFold(k, "no_proxy") || k == "APT_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// hostAptProxyConfig writes an apt configuration file (for APT_CONFIG)
// that sets p as apt's proxy, as a host set up for apt-cacher-ng has it.
func hostAptProxyConfig(t *testing.T, p *testProxy) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "apt.conf")
	if err := os.WriteFile(conf, []byte(`Acquire::http::Proxy "`+p.url+`";`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// checkNoProxyInImage fails the test if the image's /etc/apt mentions a
// proxy: the build's proxy is for the build, not for the image.
func checkNoProxyInImage(t *testing.T, img string, offset int64) {
	t.Helper()
	dir := t.TempDir()
	debugfs(t, img, offset, "rdump /etc/apt "+dir)
	found := 0
	err := filepath.Walk(filepath.Join(dir, "apt"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		found++
		data, err := os.ReadFile(p)
		if err == nil && strings.Contains(strings.ToLower(string(data)), "proxy") {
			t.Errorf("the image's %s names a proxy:\n%s", strings.TrimPrefix(p, dir), data)
		}
		return err
	})
	if err != nil || found == 0 {
		t.Errorf("reading the image's /etc/apt: %v (%d files)", err, found)
	}
}

// TestTestProxy checks the tests' proxy itself: a request through it
// arrives and is counted as apt's.
func TestTestProxy(t *testing.T) {
	p := startTestProxy(t)
	origin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go origin.Serve(l)
	defer origin.Close()
	c := http.Client{Transport: &http.Transport{Proxy: func(*http.Request) (*url.URL, error) { return url.Parse(p.url) }}}
	req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+"/x", nil)
	req.Header.Set("User-Agent", "Debian APT-HTTP/1.3 (2.6.1)")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" || p.counts["apt"] != 1 {
		t.Errorf("through the proxy: %q, counts %v", body, p.counts)
	}
}
