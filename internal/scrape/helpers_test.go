package scrape

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// testLogger logs to the test's output when -v is set, so that a failing
// run shows what the manager did.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing the test after limit. The
// limit only guards against a hang; tests never assert on how long
// something took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startManager applies cfg and runs the manager until the test ends.
func startManager(t *testing.T, app Appender, src string, opts Options) *Manager {
	t.Helper()
	cfg := mustLoad(t, src)
	m := NewManager(app, testLogger(t), opts)
	if err := m.ApplyConfig(cfg); err != nil {
		t.Fatalf("ApplyConfig: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(context.Background()); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		m.Stop()
		<-done
	})
	return m
}

// endpoint returns the status of one endpoint of the target at instance,
// and whether it exists.
func endpoint(m *Manager, instance, name string) (EndpointStatus, bool) {
	for _, ts := range m.Targets() {
		if ts.Instance != instance {
			continue
		}
		for _, es := range ts.Endpoints {
			if es.Name == name {
				return es, true
			}
		}
	}
	return EndpointStatus{}, false
}

// stored is how many scrapes of an endpoint were stored.
func stored(m *Manager, instance, name string) uint64 {
	es, _ := endpoint(m, instance, name)
	return es.Scrapes - es.Failures
}

// onlyEndpoints is a profiling_config that disables every built-in
// endpoint but the named ones, in YAML flow style.
func onlyEndpoints(names ...string) string {
	s := "{pprof_config: {"
	for i, b := range builtinEndpoints {
		on := false
		for _, n := range names {
			on = on || n == b.name
		}
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s: {enabled: %v}", b.name, on)
	}
	return s + "}}"
}

// fakeTarget is an HTTP server with handlers by path that counts requests
// per path.
type fakeTarget struct {
	*httptest.Server
	mu       sync.Mutex
	hits     map[string]int
	lastAuth string
}

func newFakeTarget(t *testing.T, handlers map[string]http.HandlerFunc) *fakeTarget {
	t.Helper()
	ft := &fakeTarget{hits: map[string]int{}}
	ft.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ft.mu.Lock()
		ft.hits[r.URL.Path]++
		ft.lastAuth = r.Header.Get("Authorization")
		ft.mu.Unlock()
		h := handlers[r.URL.Path]
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(ft.Close)
	return ft
}

func (ft *fakeTarget) addr() string { return ft.Listener.Addr().String() }

func (ft *fakeTarget) hitCount(path string) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.hits[path]
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// goroutineProfile builds a small goroutine profile with n goroutines in
// one stack.
func goroutineProfile(n int64) *gpprof.Profile {
	fn := &gpprof.Function{ID: 1, Name: "main.worker"}
	loc := &gpprof.Location{ID: 1, Line: []gpprof.Line{{Function: fn}}}
	return &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "goroutine", Unit: "count"}},
		PeriodType: &gpprof.ValueType{Type: "goroutine", Unit: "count"},
		Period:     1,
		Sample:     []*gpprof.Sample{{Location: []*gpprof.Location{loc}, Value: []int64{n}}},
		Location:   []*gpprof.Location{loc},
		Function:   []*gpprof.Function{fn},
	}
}

func encodeProfile(t testing.TB, p *gpprof.Profile) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// serveBytes answers every request with data.
func serveBytes(data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(data)
	}
}

// countingAppender stores nothing and counts profiles per tenant.
type countingAppender struct {
	n       atomic.Int64
	mu      sync.Mutex
	tenants map[string]int
	last    *ingest.Request
}

func (a *countingAppender) Ingest(_ context.Context, tenant string, r *ingest.Request) error {
	a.n.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tenants == nil {
		a.tenants = map[string]int{}
	}
	a.tenants[tenant]++
	a.last = r
	return nil
}

// yamlList writes strings as a YAML flow list.
func yamlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
