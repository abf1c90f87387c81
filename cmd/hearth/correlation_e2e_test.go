package main_test

import (
	"encoding/json"
	"fmt"
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
// samples of the enterprise customers' checkouts, selected by the local
// root span IDs of those requests as the events store has them, spend
// most of their time in computeTax, which only their checkouts run; the
// other customers' checkouts never reach it.
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

	// The root span IDs of checkouts of a tier, newest first.
	roots := func(tier string) []string {
		q := url.Values{"q": {fmt.Sprintf(`{ name = "POST /checkout" && span.app.customer.tier = %q }`, tier)},
			"from": {"now-10m"}, "limit": {"40"}}
		var ans struct {
			Data struct {
				Events []struct {
					SpanID string `json:"span_id"`
				} `json:"events"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(getBody(t, srv.url+"/api/v1/events/search?"+q.Encode())), &ans); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range ans.Data.Events {
			ids = append(ids, e.SpanID)
		}
		return ids
	}
	type topAnswer struct {
		Data struct {
			Total   float64 `json:"total"`
			Entries []struct {
				Name string  `json:"name"`
				Self float64 `json:"self"`
			} `json:"entries"`
		} `json:"data"`
	}
	top := func(ids []string) topAnswer {
		q := url.Values{"query": {fmt.Sprintf(`cpu{service_name="shop", local_root_span_id=~%q}`, strings.Join(ids, "|"))},
			"from": {"now-10m"}, "sort": {"self"}}
		var ans topAnswer
		if err := json.Unmarshal([]byte(getBody(t, srv.url+"/api/v1/query/top?"+q.Encode())), &ans); err != nil {
			t.Fatal(err)
		}
		return ans
	}
	// Wait for the load to end and its last spans and samples to land.
	var enterprise, free []string
	var ent topAnswer
	waitFor(t, 60*time.Second, "enterprise checkouts with CPU samples", func() bool {
		enterprise, free = roots("enterprise"), roots("free")
		if len(enterprise) < 20 || len(free) < 20 {
			return false
		}
		ent = top(enterprise)
		return ent.Data.Total > 0 && len(ent.Data.Entries) > 0
	})
	time.Sleep(5 * time.Second) // a scrape past the spans found
	ent = top(enterprise)
	if got := ent.Data.Entries[0].Name; !strings.HasSuffix(got, ".burn") && !strings.HasSuffix(got, ".computeTax") {
		t.Errorf("enterprise checkouts: the largest self frame is %s, want computeTax's work (burn)", got)
	}
	inTax := 0.0
	q := url.Values{"query": {fmt.Sprintf(`cpu{service_name="shop", local_root_span_id=~%q}`, strings.Join(enterprise, "|"))},
		"from": {"now-10m"}, "sort": {"total"}}
	var totals struct {
		Data struct {
			Total   float64 `json:"total"`
			Entries []struct {
				Name  string  `json:"name"`
				Total float64 `json:"total"`
			} `json:"entries"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(getBody(t, srv.url+"/api/v1/query/top?"+q.Encode())), &totals); err != nil {
		t.Fatal(err)
	}
	for _, e := range totals.Data.Entries {
		if strings.HasSuffix(e.Name, ".computeTax") {
			inTax = e.Total / totals.Data.Total
		}
	}
	if inTax < 0.5 {
		t.Errorf("enterprise checkouts spend %.0f%% of their CPU in computeTax, want most", 100*inTax)
	}
	for _, e := range top(free).Data.Entries {
		if strings.HasSuffix(e.Name, ".computeTax") {
			t.Errorf("the free tier's checkouts ran computeTax: %+v", e)
		}
	}
}
