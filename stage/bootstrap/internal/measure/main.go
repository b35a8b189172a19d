// Command measure times the bootstrap engines inside the build's user
// namespace: for each engine and variant, one run with an empty package
// cache (cold) and one with the cache it filled (warm), or with -cache one
// run on that directory (warm when it already holds the packages), printing the wall
// time, the bytes downloaded (counted by an HTTP proxy of its own that the
// engine is told to use through http_proxy, so other traffic on the host
// does not count) and whether the run worked. Run it as root and as an ordinary user with subordinate ids:
//
//	go run ./stage/bootstrap/internal/measure -suite bookworm -variants minbase,-
//
// -arch measures a foreign architecture (through qemu-user, as a build
// does), e.g. both engines for arm64 from a package cache filled before:
//
//	go run ./stage/bootstrap/internal/measure -arch arm64 -variants minbase -cache DIR
//
// It prints one line per run, e.g.
//
//	engine=debootstrap variant=minbase cache=cold time=52.8s rx=40.9MB tree=203MB uid=0 ok
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmdb2-go/vmdb2/stage/bootstrap"
	"github.com/vmdb2-go/vmdb2/stage/userns"
)

// measurer holds the command line's choices and what every run shares.
type measurer struct {
	suite, mirror string
	arch          string // as given: "" is the host's, which bootstrap picks
	archName      string // the architecture named in the output
	shared        string // -cache, or ""
	work          string
	verbose       bool
	proxy         *countingProxy
}

func main() {
	userns.Init()
	m := &measurer{}
	flag.StringVar(&m.suite, "suite", "bookworm", "suite to install")
	flag.StringVar(&m.mirror, "mirror", "http://deb.debian.org/debian", "mirror")
	engines := flag.String("engines", "debootstrap,mmdebstrap", "engines to measure")
	variants := flag.String("variants", "minbase,-", "variants to measure")
	flag.StringVar(&m.arch, "arch", "", "Debian architecture to install (default: the host's)")
	flag.StringVar(&m.shared, "cache", "", "package cache for every run, one run each (default: a new one per engine and variant, cold then warm)")
	flag.StringVar(&m.work, "dir", "", "work directory (default: a new one in $TMPDIR, removed afterwards)")
	flag.BoolVar(&m.verbose, "v", false, "show the engines' output")
	flag.Parse()
	os.Exit(m.run(strings.Split(*engines, ","), strings.Split(*variants, ",")))
}

// run measures every engine and variant and returns the exit status: 1
// when a run failed or could not start.
func (m *measurer) run(engines, variants []string) int {
	if m.work == "" {
		d, err := os.MkdirTemp("", "bootstrap-measure-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		m.work = d
		defer userns.RemoveAll(d)
	}
	var err error
	if m.proxy, err = startProxy(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if m.archName = m.arch; m.archName == "" {
		if m.archName, err = bootstrap.HostArch(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	status := 0
	for _, e := range engines {
		for _, v := range variants {
			cache, temps := filepath.Join(m.work, "cache-"+e+"-"+v), []string{"cold", "warm"}
			if m.shared != "" {
				cache, temps = m.shared, []string{"given"}
			}
			for _, temp := range temps {
				if !m.measureOne(e, v, cache, temp) {
					status = 1
				}
			}
		}
	}
	return status
}

// measureOne bootstraps once with engine e and variant v on the package
// cache, prints the run's line (temp says how warm the cache is) and
// removes the tree. It reports whether the run worked.
func (m *measurer) measureOne(e, v, cache, temp string) bool {
	target := filepath.Join(m.work, "target")
	manifest := filepath.Join(m.work, "devices.json")
	o := bootstrap.Options{
		Suite: m.suite, Mirror: m.mirror, Variant: v, Arch: m.arch,
		Target: target, CacheDir: cache, DeviceManifest: manifest,
		Engine: bootstrap.Engine(e),
		Env:    []string{"http_proxy=" + m.proxy.url},
	}
	if m.verbose {
		o.Stdout, o.Stderr = os.Stderr, os.Stderr
	}
	rx0 := m.proxy.bytes.Load()
	start := time.Now()
	err := bootstrap.Bootstrap(context.Background(), o)
	el := time.Since(start)
	rx := m.proxy.bytes.Load() - rx0
	size := du(target)
	status := "ok"
	if err != nil {
		status = "FAILED: " + err.Error()
	}
	fmt.Printf("engine=%s arch=%s variant=%s cache=%s time=%.1fs rx=%.1fMB tree=%.0fMB uid=%d %s\n",
		e, m.archName, v, temp, el.Seconds(), float64(rx)/1e6, float64(size)/1e6, os.Geteuid(), status)
	if err := userns.RemoveAll(target); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Remove(manifest)
	return err == nil
}

// countingProxy is a forward HTTP proxy that counts the bytes of the
// response bodies it relays.
type countingProxy struct {
	url   string
	bytes atomic.Int64
}

func startProxy() (*countingProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("measure: proxy: %w", err)
	}
	p := &countingProxy{url: "http://" + l.Addr().String()}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() || r.Method == http.MethodConnect {
			http.Error(w, "only plain http proxying", http.StatusBadRequest)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Connection")
		resp, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		n, _ := io.Copy(w, resp.Body)
		p.bytes.Add(n)
	}))
	return p, nil
}

// du sums the sizes of the regular files below dir (as far as this user
// can see them).
func du(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
