package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSpansJoinProfiles runs the example service examples/shop, whose
// tracer provider Hearth's instrument package wraps, under its own load,
// sending spans to a hearth server that scrapes its /debug/pprof. The CPU
// samples of the enterprise customers' checkouts, kept by a span filter
// on the profile query (or by their requests' IDs as a per-sample label),
// spend most of their time in computeTax, which only their checkouts
// run; the other customers' checkouts never reach it.
func TestSpansJoinProfiles(t *testing.T) {
	dir := t.TempDir()
	shopBin := filepath.Join(dir, "shop")
	if out, err := exec.Command("go", "build", "-o", shopBin, "../../examples/shop").CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}
	shopAddr := freeAddr(t)
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
`, shopAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, filepath.Join(dir, "data"), freeAddr(t), "--config", cfg)
	shop := exec.Command(shopBin, "-listen", shopAddr, "-hearth", srv.url, "-load", "12s", "-clients", "3")
	var shopLogs strings.Builder
	shop.Stdout, shop.Stderr = &shopLogs, &shopLogs
	if err := shop.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = shop.Process.Kill()
		_ = shop.Wait()
		if t.Failed() {
			t.Logf("shop's log:\n%s\nserver's log:\n%s", shopLogs.String(), srv.logs)
		}
	}()

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
	// The CPU of the checkouts of a tier, by function, kept by a span
	// filter, or by a per-sample label matcher when spans is "".
	top := func(spans, matcher, sort string) topAnswer {
		q := url.Values{"query": {`cpu{service_name="shop"` + matcher + `}`}, "from": {"now-10m"}, "sort": {sort}}
		if spans != "" {
			q.Set("spans", spans)
		}
		var ans topAnswer
		if err := json.Unmarshal([]byte(getBody(t, srv.url+"/api/v1/query/top?"+q.Encode())), &ans); err != nil {
			t.Fatal(err)
		}
		return ans
	}
	checkouts := func(tier string) string {
		return fmt.Sprintf(`{ name = "POST /checkout" && span.app.customer.tier = %q }`, tier)
	}
	waitFor(t, 60*time.Second, "enterprise checkouts with CPU samples", func() bool {
		a := top(checkouts("enterprise"), "", "self")
		return a.Data.Spans.Spans >= 20 && a.Data.Total > 0
	})
	time.Sleep(5 * time.Second) // a scrape past the spans found
	share := func(a topAnswer, fn string) float64 {
		for _, e := range a.Data.Entries {
			if strings.HasSuffix(e.Name, "."+fn) {
				return e.Total / a.Data.Total
			}
		}
		return 0
	}
	ent := top(checkouts("enterprise"), "", "total")
	if s := share(ent, "computeTax"); s < 0.5 {
		t.Errorf("enterprise checkouts (%d spans) spend %.0f%% of their CPU in computeTax, want most", ent.Data.Spans.Spans, 100*s)
	}
	free := top(checkouts("free"), "", "total")
	if free.Data.Total == 0 || share(free, "priceCart") == 0 {
		t.Errorf("the free tier's checkouts (%d spans) have no samples in priceCart: %+v", free.Data.Spans.Spans, free.Data)
	}
	if s := share(free, "computeTax"); s != 0 {
		t.Errorf("the free tier's checkouts ran computeTax: %.1f%% of their CPU", 100*s)
	}
	all := top("", "", "total")
	if s := share(all, "computeTax"); s >= 0.5 || s == 0 {
		t.Errorf("all of the shop spends %.0f%% in computeTax: the span filter selects nothing the whole does not", 100*s)
	}
	// One request's profile, by its ID as a per-sample label.
	var found struct {
		Data struct {
			Events []struct {
				SpanID string `json:"span_id"`
			} `json:"events"`
		} `json:"data"`
	}
	q := url.Values{"q": {checkouts("enterprise")}, "from": {"now-10m"}, "limit": {"50"}}
	if err := json.Unmarshal([]byte(getBody(t, srv.url+"/api/v1/events/search?"+q.Encode())), &found); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, e := range found.Data.Events {
		ids = append(ids, e.SpanID)
	}
	byLabel := top("", fmt.Sprintf(`, local_root_span_id=~%q`, strings.Join(ids, "|")), "total")
	if s := share(byLabel, "computeTax"); s < 0.5 {
		t.Errorf("50 enterprise checkouts by their IDs spend %.0f%% of their CPU in computeTax, want most", 100*s)
	}
	// From code to requests: the spans whose own samples ran computeTax
	// are the enterprise checkouts' "price cart" spans.
	var byTier struct {
		Data struct {
			Groups []struct {
				By     map[string]any     `json:"by"`
				Values map[string]float64 `json:"values"`
			} `json:"groups"`
			Warnings []string `json:"warnings"`
		} `json:"data"`
	}
	q = url.Values{"q": {`{ resource.service.name = "shop" }`}, "from": {"now-10m"}, "running": {"computeTax"},
		"by": {"name,span.app.customer.tier"}, "calc": {"count,sum(cpu)"}}
	if err := json.Unmarshal([]byte(getBody(t, srv.url+"/api/v1/events/query?"+q.Encode())), &byTier); err != nil {
		t.Fatal(err)
	}
	if g := byTier.Data.Groups; len(g) != 1 || g[0].By["name"] != "price cart" || g[0].By["span.app.customer.tier"] != "enterprise" ||
		g[0].Values["count"] < 10 || g[0].Values["sum(cpu)"] <= 0 {
		t.Errorf("spans running computeTax, by name and tier: %+v", g)
	}
	if w := byTier.Data.Warnings; len(w) != 1 || !strings.Contains(w[0], "running computeTax: ") {
		t.Errorf("the answer does not say what it rests on: %q", w)
	}
	// And what sets them apart: compare with the running spans as the
	// selection ranks the tier first among the price cart spans.
	var cmpAns struct {
		Data struct {
			Attributes []struct {
				Attribute string `json:"attribute"`
			} `json:"attributes"`
		} `json:"data"`
	}
	q = url.Values{"q": {`{ name = "price cart" }`}, "from": {"now-10m"}, "running": {"computeTax"}}
	if err := json.Unmarshal([]byte(getBody(t, srv.url+"/api/v1/events/compare?"+q.Encode())), &cmpAns); err != nil {
		t.Fatal(err)
	}
	if a := cmpAns.Data.Attributes; len(a) == 0 || a[0].Attribute != "span.app.customer.tier" {
		t.Errorf("compare of the spans running computeTax ranks first: %+v", a)
	}
	// A filter that selects nothing is an empty answer that says so.
	none := top(`{ name = "no such span" }`, "", "self")
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
