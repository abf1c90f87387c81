package scrape

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
)

var burnSink atomic.Uint64

// scrapeTestBurnCPU spins until stop closes; its name is what the test
// looks for in the scraped CPU profile.
//
//go:noinline
func scrapeTestBurnCPU(stop <-chan struct{}) {
	x := uint64(88172645463325252)
	for {
		select {
		case <-stop:
			burnSink.Store(x)
			return
		default:
		}
		for range 200_000 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
	}
}

var allocSink [][]byte

// scrapeTestAllocate allocates 64 KiB buffers and keeps the last few, so
// that the heap has allocations and objects in use.
//
//go:noinline
func scrapeTestAllocate(stop <-chan struct{}, mu *sync.Mutex) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Millisecond):
		}
		b := make([]byte, 64<<10)
		mu.Lock()
		if len(allocSink) < 64 {
			allocSink = append(allocSink, b)
		} else {
			allocSink[i%64] = b
		}
		mu.Unlock()
	}
}

// scrapeTestContend makes mutex contention and blocking on a channel.
func scrapeTestContend(stop <-chan struct{}) {
	var mu sync.Mutex
	ch := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				time.Sleep(200 * time.Microsecond)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case ch <- 1:
			}
		}
	})
	for {
		select {
		case <-stop:
			wg.Wait()
			return
		case <-time.After(time.Millisecond):
		}
		select {
		case <-ch:
		case <-stop:
		}
	}
}

// TestScrapeGoService scrapes a real Go service, this test process with
// net/http/pprof on loopback, into a real store, and reads back every kind
// of profile.
func TestScrapeGoService(t *testing.T) {
	prevMutex := runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(int(time.Microsecond))
	t.Cleanup(func() {
		runtime.SetMutexProfileFraction(prevMutex)
		runtime.SetBlockProfileRate(0)
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var allocMu sync.Mutex
	wg.Go(func() { scrapeTestBurnCPU(stop) })
	wg.Go(func() { scrapeTestAllocate(stop, &allocMu) })
	wg.Go(func() { scrapeTestContend(stop) })
	t.Cleanup(func() { close(stop); wg.Wait() })

	// net/http/pprof mounted on a mux of its own, as a service would on
	// its admin port. Only this target asks for a CPU profile: a Go process
	// runs one at a time.
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	st := profiletest.OpenStore(t)
	start := time.Now()
	m := startManager(t, st.Ing, fmt.Sprintf(`
scrape_configs:
  - job_name: gosvc
    scrape_interval: 1s
    static_configs:
      - targets: [%q]
        labels: {env: test}
    profiling_config:
      pprof_config:
        process_cpu: {seconds: 1}
`, addr), Options{})

	// Enough scrapes that every cumulative endpoint stored at least one
	// delta after its baseline.
	want := map[string]uint64{"process_cpu": 2, "memory": 1, "allocs": 3, "goroutine": 1, "mutex": 2, "block": 2}
	waitFor(t, 40*time.Second, "every endpoint to be stored enough times", func() bool {
		for name, n := range want {
			if stored(m, addr, name) < n {
				return false
			}
		}
		return true
	})
	m.Stop()
	for _, ts := range m.Targets() {
		for _, es := range ts.Endpoints {
			if es.Failures > 0 {
				t.Logf("endpoint %s: %d of %d scrapes failed, last error %q", es.Name, es.Failures, es.Scrapes, es.LastError)
			}
		}
	}

	ctx := context.Background()
	end := time.Now().Add(time.Second)
	series, err := st.DB.Series(ctx, "anonymous", start.UnixNano(), end.UnixNano(), nil)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]labels.Labels{}
	for _, ls := range series {
		byType[ls.Get(labels.ProfileType)] = ls
	}
	full := func(alias string) string {
		typ, err := profile.ParseType(alias)
		if err != nil {
			t.Fatal(err)
		}
		return typ.String()
	}
	for _, alias := range []string{"cpu", "samples", "inuse_space", "inuse_objects", "alloc_space", "alloc_objects",
		"goroutine", "mutex_contentions", "mutex_delay", "block_contentions", "block_delay"} {
		ls, ok := byType[full(alias)]
		if !ok {
			t.Errorf("no series of %s (%s); stored types: %v", alias, full(alias), keys(byType))
			continue
		}
		for name, v := range map[string]string{"job": "gosvc", "instance": addr, "service_name": "gosvc", "env": "test"} {
			if got := ls.Get(name); got != v {
				t.Errorf("series %s: label %s = %q; want %q", ls, name, got, v)
			}
		}
	}

	// allocs is cumulative: its first scrape is only the baseline, so the
	// alloc series has one profile fewer than there were stored scrapes.
	allocs, _ := endpoint(m, addr, "allocs")
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.ProfileType, full("alloc_space"))}
	sps, err := st.DB.SelectSeries(ctx, "anonymous", storageParams(start, end, ms))
	if err != nil {
		t.Fatal(err)
	}
	if len(sps) != 1 {
		t.Fatalf("alloc_space: %d series; want 1", len(sps))
	}
	if got, want := uint64(len(sps[0].Points)), allocs.Scrapes-allocs.Failures-1; got != want {
		t.Errorf("alloc_space: %d profiles stored from %d stored scrapes; want %d (the first is the baseline)", got, allocs.Scrapes-allocs.Failures, want)
	}
	for _, p := range sps[0].Points {
		if p.V < 0 {
			t.Errorf("alloc_space point at %d is negative: %d", p.T, p.V)
		}
	}

	// The burning function is in the CPU flame graph.
	eng := query.NewEngine(st.DB)
	fg, err := eng.FlameGraph(ctx, query.Request{
		Tenant: "anonymous", Query: `cpu{service_name="gosvc"}`, Start: start, End: end,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	burn := findNode(fg.Root, "scrapeTestBurnCPU")
	if burn == nil {
		t.Fatalf("scrapeTestBurnCPU is not in the CPU flame graph (total %d)", fg.Total)
	}
	if burn.Total <= 0 {
		t.Errorf("scrapeTestBurnCPU has total %d in the CPU flame graph; want > 0", burn.Total)
	}
}

func findNode(n *query.Node, fn string) *query.Node {
	if n == nil {
		return nil
	}
	if strings.HasSuffix(n.Name, "."+fn) {
		return n
	}
	for _, c := range n.Children {
		if f := findNode(c, fn); f != nil {
			return f
		}
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
