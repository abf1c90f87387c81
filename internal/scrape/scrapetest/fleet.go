// Package scrapetest serves fake Go services for tests, benchmarks and load
// tests of scraping: many loopback listeners in one process, each answering
// the paths of net/http/pprof.
//
// A Go process can run only one CPU profile at a time, so the CPU endpoint
// serves recorded profiles instead of profiling. The other endpoints serve
// the process's own runtime profiles, live or as a snapshot taken once.
//
//	fleet, err := scrapetest.Start(200, scrapetest.Options{CPUProfiles: cpu})
//	defer fleet.Close()
//	for _, addr := range fleet.Addrs() { ... }
package scrapetest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a fleet.
type Options struct {
	// CPUProfiles are served by /debug/pprof/profile, target i starting at
	// profile i and each request taking the next. Required.
	CPUProfiles [][]byte
	// WaitSeconds makes /debug/pprof/profile wait the ?seconds= asked
	// before answering, as a real CPU profile does. Without it the answer
	// is immediate, which benchmarks of the scraper want.
	WaitSeconds bool
	// Snapshot serves the runtime profiles taken once at Start instead of
	// fresh ones per request, so that the fleet costs the process little.
	Snapshot bool
}

// runtimeProfiles are the endpoints answered from runtime/pprof.
var runtimeProfiles = []string{"heap", "allocs", "goroutine", "mutex", "block"}

// Fleet is a set of running fake targets.
type Fleet struct {
	opts     Options
	servers  []*http.Server
	addrs    []string
	snapshot map[string][]byte
	wg       sync.WaitGroup
	requests atomic.Int64
}

// Start listens on n loopback ports and serves a fake target on each.
func Start(n int, opts Options) (*Fleet, error) {
	if len(opts.CPUProfiles) == 0 {
		return nil, errors.New("scrapetest: no CPU profiles to serve")
	}
	f := &Fleet{opts: opts}
	if opts.Snapshot {
		f.snapshot = map[string][]byte{}
		for _, name := range runtimeProfiles {
			b, err := lookup(name)
			if err != nil {
				return nil, err
			}
			f.snapshot[name] = b
		}
	}
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("scrapetest: listen for target %d: %w", i, err)
		}
		srv := &http.Server{Handler: f.handler(i), ReadHeaderTimeout: 10 * time.Second}
		f.servers = append(f.servers, srv)
		f.addrs = append(f.addrs, l.Addr().String())
		f.wg.Go(func() { _ = srv.Serve(l) })
	}
	return f, nil
}

// Addrs returns the targets' host:port addresses.
func (f *Fleet) Addrs() []string { return f.addrs }

// Requests counts the requests answered so far, by every target.
func (f *Fleet) Requests() int64 { return f.requests.Load() }

// Close stops every target and waits for them.
func (f *Fleet) Close() {
	for _, srv := range f.servers {
		_ = srv.Close()
	}
	f.wg.Wait()
}

func (f *Fleet) handler(i int) http.Handler {
	mux := http.NewServeMux()
	next := int64(i)
	mux.HandleFunc("GET /debug/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.opts.WaitSeconds {
			sec, _ := strconv.Atoi(r.URL.Query().Get("seconds"))
			if sec <= 0 {
				sec = 30 // net/http/pprof's default
			}
			t := time.NewTimer(time.Duration(sec) * time.Second)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		k := atomic.AddInt64(&next, 1) - 1
		serve(w, f.opts.CPUProfiles[int(k%int64(len(f.opts.CPUProfiles)))])
	})
	for _, name := range runtimeProfiles {
		mux.HandleFunc("GET /debug/pprof/"+name, func(w http.ResponseWriter, r *http.Request) {
			f.requests.Add(1)
			if b, ok := f.snapshot[name]; ok {
				serve(w, b)
				return
			}
			b, err := lookup(name)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			serve(w, b)
		})
	}
	return mux
}

func serve(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func lookup(name string) ([]byte, error) {
	p := pprof.Lookup(name)
	if p == nil {
		return nil, fmt.Errorf("scrapetest: no runtime profile %q", name)
	}
	var b bytes.Buffer
	if err := p.WriteTo(&b, 0); err != nil {
		return nil, fmt.Errorf("scrapetest: write %s profile: %w", name, err)
	}
	return b.Bytes(), nil
}

// LoadCPUProfiles reads the files that match pattern, such as the
// benchmark corpus's bench/corpus/cpu-*.pb.gz.
func LoadCPUProfiles(pattern string) ([][]byte, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("scrapetest: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("scrapetest: no file matches %s", pattern)
	}
	var out [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("scrapetest: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}
