package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type targetsAnswer struct {
	Data struct {
		ActiveTargets []struct {
			ScrapePool string            `json:"scrapePool"`
			Health     string            `json:"health"`
			LastError  string            `json:"lastError"`
			Labels     map[string]string `json:"labels"`
		} `json:"activeTargets"`
	} `json:"data"`
}

func targets(t *testing.T, base string) targetsAnswer {
	t.Helper()
	var ta targetsAnswer
	if err := json.Unmarshal([]byte(getBody(t, base+"/api/v1/targets")), &ta); err != nil {
		t.Fatal(err)
	}
	return ta
}

// waitFor polls cond until it holds, for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestScrapeAndReload runs `hearth server --config` scraping its own
// /debug/pprof endpoints and a dead address, then changes the file and
// reloads it with SIGHUP and with POST /-/reload.
func TestScrapeAndReload(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	dead := freeAddr(t) // nothing listens here
	cfgPath := filepath.Join(dir, "hearth.yaml")
	writeCfg := func(body string) {
		if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The job "self" scrapes the server's own endpoints but CPU, which
	// waits a whole interval; "gone" points where nothing listens.
	config := func(withGone bool) string {
		c := fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: [%q]
        labels: {env: e2e}
    profiling_config:
      pprof_config:
        process_cpu: {enabled: false}
`, addr)
		if withGone {
			c += fmt.Sprintf("  - job_name: gone\n    static_configs:\n      - targets: [%q]\n", dead)
		}
		return c
	}
	writeCfg(config(true))
	srv := startServer(t, filepath.Join(dir, "data"), addr, "--config", cfgPath)

	waitFor(t, 20*time.Second, "self up and gone down", func() bool {
		var up, down bool
		for _, tg := range targets(t, srv.url).Data.ActiveTargets {
			up = up || (tg.ScrapePool == "self" && tg.Health == "up")
			down = down || (tg.ScrapePool == "gone" && tg.Health == "down" && strings.Contains(tg.LastError, "refused"))
		}
		return up && down
	})
	// What was scraped is stored under the target's labels.
	waitFor(t, 20*time.Second, "scraped goroutine profiles", func() bool {
		q := url.Values{"query": {`{job="self",instance="` + addr + `",service_name="self",env="e2e"}`}, "from": {"now-5m"}}
		body := getBody(t, srv.url+"/api/v1/label/__profile_type__/values?"+q.Encode())
		return strings.Contains(body, "goroutine:goroutine:count") && strings.Contains(body, "memory:inuse_space:bytes")
	})

	// SIGHUP: the dead job is gone.
	writeCfg(config(false))
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pools := func() []string {
		var ps []string
		for _, tg := range targets(t, srv.url).Data.ActiveTargets {
			ps = append(ps, tg.ScrapePool)
		}
		return ps
	}
	waitFor(t, 10*time.Second, "job gone removed by SIGHUP", func() bool { return slices.Equal(pools(), []string{"self"}) })

	// A broken file is refused with its cause; the running jobs stay.
	writeCfg("scrape_configs:\n  - job_name: self\n    scrape_intervall: 1s\n")
	resp, err := http.Post(srv.url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 512)
	n, _ := resp.Body.Read(msg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg[:n]), "scrape_intervall") {
		t.Fatalf("reload of a broken file: %d %s", resp.StatusCode, msg[:n])
	}
	if got := pools(); !slices.Equal(got, []string{"self"}) {
		t.Fatalf("jobs after a refused reload: %v", got)
	}
	srv.stop(t, syscall.SIGTERM)
}
