package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
)

// TestSpansJoinProfiles runs the example service examples/shop, whose
// tracer provider Hearth's instrument package wraps, under its own load,
// sending spans to a hearth server, twice at once: one shop (service
// "shop") has its /debug/pprof scraped by the server, the other
// ("shop-sdk") sends its profiles with the pyroscope-go SDK to /ingest.
// Each source is then checked on its own, by its service name, for the
// same things: the CPU samples of the enterprise customers' checkouts,
// kept by a span filter on the profile query, spend most of their time in
// computeTax, which only their checkouts run, and it is their largest self
// frame; the spans running renderCart are GET /cart's, and those running
// computeTax the enterprise checkouts' "price cart" spans. Once the shops
// have stopped, nothing more arrives, and the sums are exact: a span
// filter's flame graph holds as many samples as the matching spans' own
// samples add up to, and a function's time in the profile is the sum of
// its time over the spans running it.
func TestSpansJoinProfiles(t *testing.T) {
	dir := t.TempDir()
	shopBin := filepath.Join(dir, "shop")
	if out, err := exec.Command("go", "build", "-o", shopBin, "../../examples/shop").CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}
	scraped := freeAddr(t)
	cfg := filepath.Join(dir, "hearth.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`scrape_configs:
  - job_name: shop
    scrape_interval: 2s
    static_configs: [{targets: ['%s'], labels: {service_name: shop}}]
    profiling_config:
      pprof_config:
        memory: {enabled: false}
        allocs: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}
        block: {enabled: false}
`, scraped)), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, filepath.Join(dir, "data"), freeAddr(t), "--config", cfg)
	from := time.Now().Add(-time.Minute)
	const load = 12 * time.Second

	type shop struct {
		source, service string
		cmd             *exec.Cmd
		logs            *lockedBuffer
	}
	shops := []*shop{
		{source: "scrape", service: "shop", cmd: exec.Command(shopBin, "-listen", scraped)},
		// Its /debug/pprof is not scraped: the SDK holds its CPU profile.
		{source: "pyroscope-go", service: "shop-sdk", cmd: exec.Command(shopBin, "-listen", "127.0.0.1:0",
			"-pyroscope", srv.url, "-pyroscope-upload-rate", "2s")},
	}
	for _, s := range shops {
		s.cmd.Args = append(s.cmd.Args, "-service", s.service, "-hearth", srv.url, "-load", load.String(), "-clients", "3")
		s.logs = &lockedBuffer{}
		s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if s.cmd.ProcessState == nil {
				_ = s.cmd.Process.Kill()
				_ = s.cmd.Wait()
			}
		})
	}
	// The samples of the requests of the load's first half are in
	// profiles that have arrived; those of its last requests may have
	// been in the scrape under way when the shop stopped, which is lost.
	mid := time.Now().Add(load / 2)
	defer func() {
		if t.Failed() {
			for _, s := range shops {
				t.Logf("%s shop's log:\n%s", s.source, s.logs.String())
			}
			t.Logf("server's log:\n%s", srv.logs)
		}
	}()
	// Once its load is over, each shop is stopped: on SIGTERM it sends
	// its last spans and, with pyroscope-go, its last profile, and waits
	// for them to be taken. The scraped shop's last samples are those of
	// the scrapes before it stopped: a scrape refused afterwards says they
	// are all in. From then on the data no longer changes.
	for _, s := range shops {
		waitFor(t, 90*time.Second, s.service+"'s load to end", func() bool { return strings.Contains(s.logs.String(), "load done") })
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := s.cmd.Wait(); err != nil {
			t.Fatalf("%s: %v", s.service, err)
		}
		if strings.Contains(s.logs.String(), "level=ERROR") {
			t.Errorf("%s logged errors", s.service)
		}
	}
	waitFor(t, 30*time.Second, "a scrape of the stopped shop refused", func() bool {
		ta := targets(t, srv.url).Data.ActiveTargets
		return len(ta) == 1 && ta[0].Health == "down" && strings.Contains(ta[0].LastError, "refused")
	})
	until := time.Now()
	for _, s := range shops {
		t.Run(s.source, func(t *testing.T) {
			checkShopProfiles(t, srv.url, s.service, from, mid, until)
		})
	}

	// A filter that selects nothing is an empty answer that says so.
	var none topAnswer
	q := url.Values{"query": {`cpu{service_name="shop"}`}, "from": {"now-10m"}, "spans": {`{ name = "no such span" }`}}
	getJSON(t, srv.url+"/api/v1/query/top?"+q.Encode(), &none)
	if none.Data.Spans.Spans != 0 || none.Data.Total != 0 || none.Data.Spans.Filter != `{ name = "no such span" }` {
		t.Errorf("a filter of no spans: %+v", none.Data)
	}
	// A bad one is refused with its position.
	bad := url.Values{"query": {`cpu{service_name="shop"}`}, "spans": {`{ duration > }`}}
	resp, err := http.Get(srv.url + "/api/v1/query/top?" + bad.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "spans: 1:") {
		t.Errorf("a bad span filter: %d %s", resp.StatusCode, body)
	}
}

// checkShopProfiles checks the profiles and spans of the shop that ran as
// service, from one source, over [from, until]; the requests before mid
// have all been profiled.
func checkShopProfiles(t *testing.T, srv, service string, from, mid, until time.Time) {
	rng := url.Values{"from": {from.Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339Nano)}}
	// The CPU of the service by function, of the samples whose span or
	// local root span spans selects (all of them when spans is ""), or
	// that matcher keeps.
	top := func(spans, matcher, sort string) topAnswer {
		q := url.Values{"query": {fmt.Sprintf(`cpu{service_name=%q%s}`, service, matcher)}, "sort": {sort}}
		maps.Copy(q, rng)
		if spans != "" {
			q.Set("spans", spans)
		}
		var ans topAnswer
		getJSON(t, srv+"/api/v1/query/top?"+q.Encode(), &ans)
		return ans
	}
	// The spans that filter selects, grouped by by, with running= when
	// it is not "".
	events := func(filter, running, by, calc string) eventsAnswer {
		q := url.Values{"q": {filter}, "by": {by}, "calc": {calc}}
		maps.Copy(q, rng)
		if running != "" {
			q.Set("running", running)
		}
		var ans eventsAnswer
		getJSON(t, srv+"/api/v1/events/query?"+q.Encode(), &ans)
		return ans
	}
	// The CPU of the spans a filter selects, each its own samples (those
	// whose span_id it is), summed, and how many have any.
	ownCPU := func(filter string) (cpu int64, spans int) {
		for _, g := range events(filter, ".", "", "count,sum(cpu)").Data.Groups {
			cpu += int64(g.Values["sum(cpu)"])
			spans += int(g.Values["count"])
		}
		return cpu, spans
	}
	svc := fmt.Sprintf("resource.service.name = %q", service)
	checkouts := func(tier string) string {
		return fmt.Sprintf(`{ %s && name = "POST /checkout" && span.app.customer.tier = %q }`, svc, tier)
	}

	// The slow requests: the enterprise customers' checkouts.
	ent := top(checkouts("enterprise"), "", "self")
	if ent.Data.Spans.Spans < 20 || ent.Data.Total == 0 {
		t.Fatalf("%d enterprise checkouts with %v ns of CPU samples; the test needs 20 with samples", ent.Data.Spans.Spans, ent.Data.Total)
	}
	if e := ent.Data.Entries; !strings.HasSuffix(e[0].Name, ".computeTax") {
		t.Errorf("the largest self frame of the enterprise checkouts is %s (%v ns), want computeTax", e[0].Name, e[0].Self)
	}
	if s := ent.share("computeTax"); s < 0.5 {
		t.Errorf("enterprise checkouts (%d spans) spend %.0f%% of their CPU in computeTax, want most", ent.Data.Spans.Spans, 100*s)
	}
	// Exact: the filter selected as many spans as there are, and its
	// flame graph is their samples: those of each checkout and of its
	// "price cart" span, the only spans a checkout has.
	var n float64
	for _, g := range events(checkouts("enterprise"), "", "", "count").Data.Groups {
		n += g.Values["count"]
	}
	if int(n) != ent.Data.Spans.Spans {
		t.Errorf("the span filter selected %d enterprise checkouts, the events query counts %v", ent.Data.Spans.Spans, n)
	}
	own, withSamples := ownCPU(fmt.Sprintf(`{ %s && span.app.customer.tier = "enterprise" && (name = "POST /checkout" || name = "price cart") }`, svc))
	if own != int64(ent.Data.Total) {
		t.Errorf("the enterprise checkouts' flame graph holds %v ns; their %d spans with samples took %d ns", ent.Data.Total, withSamples, own)
	}

	free := top(checkouts("free"), "", "total")
	if free.Data.Total == 0 || free.share("priceCart") == 0 {
		t.Errorf("the free tier's checkouts (%d spans) have no samples in priceCart: %+v", free.Data.Spans.Spans, free.Data)
	}
	if s := free.share("computeTax"); s != 0 {
		t.Errorf("the free tier's checkouts ran computeTax: %.1f%% of their CPU", 100*s)
	}
	all := top("", "", "total")
	if s := all.share("computeTax"); s >= 0.5 || s == 0 {
		t.Errorf("all of the shop spends %.0f%% in computeTax: the span filter selects nothing the whole does not", 100*s)
	}

	// Requests' profiles, by their IDs as a per-sample label: the last
	// 50 enterprise checkouts before mid.
	var found struct {
		Data struct {
			Events []struct {
				SpanID string `json:"span_id"`
			} `json:"events"`
		} `json:"data"`
	}
	q := url.Values{"q": {checkouts("enterprise")}, "limit": {"50"}, "from": rng["from"], "until": {mid.Format(time.RFC3339Nano)}}
	getJSON(t, srv+"/api/v1/events/search?"+q.Encode(), &found)
	ids := []string{}
	for _, e := range found.Data.Events {
		ids = append(ids, e.SpanID)
	}
	byLabel := top("", fmt.Sprintf(`, local_root_span_id=~%q`, strings.Join(ids, "|")), "total")
	if s := byLabel.share("computeTax"); s < 0.5 {
		t.Errorf("50 enterprise checkouts by their IDs spend %.0f%% of their CPU in computeTax, want most", 100*s)
	}
	// Grafana's "profiles for this span": the same requests through
	// Pyroscope's query API, by span_selector, with its own client.
	qc := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv)
	//lint:ignore SA1019 Grafana 11 calls it for "profiles for this span".
	res, err := qc.SelectMergeSpanProfile(context.Background(), connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", LabelSelector: fmt.Sprintf(`{service_name=%q}`, service),
		SpanSelector: ids, Start: from.UnixMilli(), End: until.UnixMilli()}))
	if err != nil {
		t.Fatalf("SelectMergeSpanProfile: %v", err)
	}
	if got := res.Msg.Flamegraph.Total; got == 0 || got != int64(byLabel.Data.Total) {
		t.Errorf("span_selector of the 50 checkouts: %d ns; their samples by label: %v ns", got, byLabel.Data.Total)
	}

	// From code to requests: the spans whose own samples ran computeTax
	// are the enterprise checkouts' "price cart" spans, and their time
	// in it is all of the profile's.
	byTier := events(fmt.Sprintf("{ %s }", svc), "computeTax", "name,span.app.customer.tier", "count,sum(cpu)")
	if g := byTier.Data.Groups; len(g) != 1 || g[0].By["name"] != "price cart" || g[0].By["span.app.customer.tier"] != "enterprise" ||
		g[0].Values["count"] < 10 || g[0].Values["sum(cpu)"] <= 0 {
		t.Errorf("spans running computeTax, by name and tier: %+v", g)
	} else if sum, in := int64(g[0].Values["sum(cpu)"]), all.total("computeTax"); sum != in || in != ent.total("computeTax") {
		t.Errorf("the spans running computeTax took %d ns in it; the profile has %d ns of it, the enterprise checkouts' %d ns",
			sum, in, ent.total("computeTax"))
	}
	// Every sample in it has a span: the warning says what the answer
	// rests on, and nothing about samples without one.
	if w := byTier.Data.Warnings; len(w) != 1 || !strings.Contains(w[0], "running computeTax: ") {
		t.Errorf("the answer does not say what it rests on: %q", w)
	}
	// The cart route renders every view in renderCart, in the request's
	// own span: the route is what runs it.
	byName := events(fmt.Sprintf("{ %s }", svc), "renderCart", "name", "sum(cpu),count")
	if g := byName.Data.Groups; len(g) != 1 || g[0].By["name"] != "GET /cart" || g[0].Values["count"] < 10 {
		t.Errorf("spans running renderCart, by name: %+v", g)
	} else {
		cart := top(fmt.Sprintf(`{ %s && name = "GET /cart" }`, svc), "", "total")
		if sum := int64(g[0].Values["sum(cpu)"]); sum != all.total("renderCart") || sum != cart.total("renderCart") {
			t.Errorf("the %v GET /cart spans running renderCart took %d ns in it; the profile has %d ns of it, the cart views' %d ns",
				g[0].Values["count"], sum, all.total("renderCart"), cart.total("renderCart"))
		}
	}
	// And what sets the spans running computeTax apart: compare ranks
	// the tier first among the price cart spans.
	var cmpAns struct {
		Data struct {
			Attributes []struct {
				Attribute string `json:"attribute"`
			} `json:"attributes"`
		} `json:"data"`
	}
	q = url.Values{"q": {fmt.Sprintf(`{ %s && name = "price cart" }`, svc)}, "running": {"computeTax"}}
	maps.Copy(q, rng)
	getJSON(t, srv+"/api/v1/events/compare?"+q.Encode(), &cmpAns)
	if a := cmpAns.Data.Attributes; len(a) == 0 || a[0].Attribute != "span.app.customer.tier" {
		t.Errorf("compare of the spans running computeTax ranks first: %+v", a)
	}
}

// topAnswer is the JSON of /api/v1/query/top.
type topAnswer struct {
	Data struct {
		Total   float64 `json:"total"`
		Entries []struct {
			Name  string  `json:"name"`
			Self  float64 `json:"self"`
			Total float64 `json:"total"`
		} `json:"entries"`
		Spans struct {
			Filter string `json:"filter"`
			Spans  int    `json:"spans"`
		} `json:"spans"`
	} `json:"data"`
}

// total is the time in (or under) the function fn of package main, 0
// when it has none.
func (a topAnswer) total(fn string) int64 {
	for _, e := range a.Data.Entries {
		if e.Name == "main."+fn {
			return int64(math.Round(e.Total))
		}
	}
	return 0
}

// share is total(fn) as a share of the answer's total.
func (a topAnswer) share(fn string) float64 {
	if a.Data.Total == 0 {
		return 0
	}
	return float64(a.total(fn)) / a.Data.Total
}

// eventsAnswer is the JSON of /api/v1/events/query.
type eventsAnswer struct {
	Data struct {
		Groups []struct {
			By     map[string]any     `json:"by"`
			Values map[string]float64 `json:"values"`
		} `json:"groups"`
		Warnings []string `json:"warnings"`
	} `json:"data"`
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getBody(t, u)), v); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a process's output, read while the process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
