package scrape

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// TestSlowTargetsDoNotDelayOthers runs a healthy target beside one that
// hangs until every request times out and one where nothing listens. The
// healthy target's scrapes go on at its interval, and the status of the
// others says what went wrong.
func TestSlowTargetsDoNotDelayOthers(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(3))
	healthy := newFakeTarget(t, map[string]http.HandlerFunc{
		"/debug/pprof/goroutine": serveBytes(profile),
		"/slow":                  serveBytes(profile),
	})
	release := make(chan struct{})
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	hanging := newFakeTarget(t, map[string]http.HandlerFunc{"/debug/pprof/goroutine": hang, "/slow": hang})
	t.Cleanup(func() { close(release) }) // runs before the servers close
	dead := deadAddr(t)

	// "slow" asks for a 2 s window, so a hanging target holds that loop for
	// 2.2 s; a scraper that went target by target would stall with it.
	m := startManager(t, &countingAppender{}, fmt.Sprintf(`
scrape_configs:
  - job_name: mixed
    scrape_interval: 200ms
    static_configs: [{targets: [%q, %q, %q]}]
    profiling_config:
      pprof_config:
        process_cpu: {enabled: false}
        memory: {enabled: false}
        allocs: {enabled: false}
        mutex: {enabled: false}
        block: {enabled: false}
        slow: {path: /slow, seconds: 2}
`, healthy.addr(), hanging.addr(), dead), Options{})

	// Wait until the hanging target's slow endpoint is stuck in its first
	// request, then count the healthy target's scrapes over a window.
	waitFor(t, 10*time.Second, "the hanging target to be asked for /slow", func() bool { return hanging.hitCount("/slow") > 0 })
	before := healthy.hitCount("/debug/pprof/goroutine")
	const window = 2 * time.Second
	time.Sleep(window)
	got := healthy.hitCount("/debug/pprof/goroutine") - before
	// 10 intervals fit in the window; ask for a third of them, so that a
	// busy machine does not fail the test, while a scraper held up by the
	// 2.2 s hang would get at most 1.
	if want := int(window / (200 * time.Millisecond) / 3); got < want {
		t.Errorf("healthy target scraped %d times in %s beside a hanging and a dead one; want at least %d", got, window, want)
	}

	waitFor(t, 10*time.Second, "every bad endpoint to be reported down", func() bool {
		for _, addr := range []string{hanging.addr(), dead} {
			for _, name := range []string{"goroutine", "slow"} {
				if es, _ := endpoint(m, addr, name); es.Health != HealthDown {
					return false
				}
			}
		}
		return true
	})
	for _, tc := range []struct{ addr, endpoint, want string }{
		{hanging.addr(), "goroutine", "timed out after 200ms"},
		{hanging.addr(), "slow", "timed out after 2.2s"},
		{dead, "goroutine", "connection refused"},
		{dead, "slow", "connection refused"},
	} {
		es, _ := endpoint(m, tc.addr, tc.endpoint)
		if !strings.Contains(es.LastError, tc.want) || !strings.Contains(es.LastError, tc.addr) {
			t.Errorf("%s %s: lastError = %q; want it to name the target and say %q", tc.addr, tc.endpoint, es.LastError, tc.want)
		}
	}
	for _, ts := range m.Targets() {
		want := HealthDown
		if ts.Instance == healthy.addr() {
			want = HealthUp
		}
		if ts.Health != want {
			t.Errorf("target %s: health %q (lastError %q); want %q", ts.Instance, ts.Health, ts.LastError, want)
		}
		if want == HealthDown && !strings.Contains(ts.LastError, "goroutine: ") {
			t.Errorf("target %s: lastError %q does not name the failing endpoint", ts.Instance, ts.LastError)
		}
	}
	if s := m.Stats(); s.Failures == 0 || s.Scrapes <= s.Failures || s.Targets != 3 || s.Loops != 6 {
		t.Errorf("stats = %+v; want failures, more scrapes than failures, 3 targets and 6 loops", s)
	}
}

func writeFileAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// instances lists the instances of a job's targets with one label.
func instances(m *Manager, label string) []string {
	var out []string
	for _, ts := range m.Targets() {
		out = append(out, ts.Instance+" "+label+"="+ts.Labels[label])
	}
	slices.Sort(out)
	return out
}

// TestFileSD writes a file_sd file, rewrites it, breaks it and removes it,
// and follows the targets.
func TestFileSD(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "a.json")
	yamlFile := filepath.Join(dir, "b.yml")
	writeFileAtomic(t, jsonFile, `[{"targets": ["127.0.0.1:9001"], "labels": {"env": "one"}}]`)
	// A long interval: the test reads status, it does not need scrapes.
	m := startManager(t, &countingAppender{}, fmt.Sprintf(`
scrape_configs:
  - job_name: files
    scrape_interval: 1h
    static_configs: [{targets: ["127.0.0.1:9000"], labels: {env: static}}]
    file_sd_configs:
      - files: [%q, %q]
        refresh_interval: 1h
`, filepath.Join(dir, "*.json"), filepath.Join(dir, "*.yml")), Options{FileSDDebounce: 20 * time.Millisecond})

	want := []string{"127.0.0.1:9000 env=static", "127.0.0.1:9001 env=one"}
	if got := instances(m, "env"); !slices.Equal(got, want) {
		t.Errorf("targets after ApplyConfig = %v; want %v", got, want)
	}
	for _, ts := range m.Targets() {
		if ts.Instance == "127.0.0.1:9001" && ts.DiscoveredLabels[MetaFilepath] != jsonFile {
			t.Errorf("discovered labels %v; want %s=%s", ts.DiscoveredLabels, MetaFilepath, jsonFile)
		}
		if _, ok := ts.Labels[MetaFilepath]; ok {
			t.Errorf("series labels %v hold %s", ts.Labels, MetaFilepath)
		}
	}

	check := func(what string, want []string) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool { return slices.Equal(instances(m, "env"), want) })
	}
	writeFileAtomic(t, jsonFile, `[{"targets": ["127.0.0.1:9002", "127.0.0.1:9003"], "labels": {"env": "two"}}]`)
	check("the rewritten JSON file's targets", []string{"127.0.0.1:9000 env=static", "127.0.0.1:9002 env=two", "127.0.0.1:9003 env=two"})

	writeFileAtomic(t, yamlFile, "- targets: ['127.0.0.1:9004']\n  labels: {env: yaml, __meta_source: gen}\n")
	check("the new YAML file's targets", []string{"127.0.0.1:9000 env=static", "127.0.0.1:9002 env=two", "127.0.0.1:9003 env=two", "127.0.0.1:9004 env=yaml"})

	// A broken rewrite keeps the last good targets of that file.
	d := m.pools["files"].files[0]
	readsBefore := func() int { d.mu.Lock(); defer d.mu.Unlock(); return d.reads }()
	writeFileAtomic(t, jsonFile, `[{"targets": ["127.0.0.1:9005"], "labels": {"env": "broken"`)
	waitFor(t, 10*time.Second, "the broken file to be read", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.reads > readsBefore
	})
	if got, want := instances(m, "env"), []string{"127.0.0.1:9000 env=static", "127.0.0.1:9002 env=two", "127.0.0.1:9003 env=two", "127.0.0.1:9004 env=yaml"}; !slices.Equal(got, want) {
		t.Errorf("targets after a broken rewrite = %v; want the last good ones %v", got, want)
	}

	if err := os.Remove(yamlFile); err != nil {
		t.Fatal(err)
	}
	check("the removed file's targets to go", []string{"127.0.0.1:9000 env=static", "127.0.0.1:9002 env=two", "127.0.0.1:9003 env=two"})
}

// loopsOf returns the running loops of a job by target address and
// endpoint.
func loopsOf(m *Manager, job string) map[string]*loop {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]*loop{}
	if p := m.pools[job]; p != nil {
		for _, l := range p.loops {
			out[l.target.address+" "+l.endpoint.Name] = l
		}
	}
	return out
}

// TestReload applies new configurations to a running manager: unchanged
// loops go on with their state and no second loop, removed ones stop, new
// ones start, changed settings restart their loops.
func TestReload(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(1))
	handlers := map[string]http.HandlerFunc{"/debug/pprof/goroutine": serveBytes(profile), "/debug/pprof/heap": serveBytes(profile)}
	t1, t2, t3 := newFakeTarget(t, handlers), newFakeTarget(t, handlers), newFakeTarget(t, handlers)
	config := func(interval string, jobA []string, jobB []string) *Config {
		src := fmt.Sprintf(`
scrape_configs:
  - job_name: a
    scrape_interval: %s
    static_configs: [{targets: %s}]
    profiling_config: %s
`, interval, yamlList(jobA), onlyEndpoints("goroutine"))
		if jobB != nil {
			src += fmt.Sprintf(`
  - job_name: b
    scrape_interval: 200ms
    static_configs: [{targets: %s}]
    profiling_config: %s
`, yamlList(jobB), onlyEndpoints("goroutine"))
		}
		return mustLoad(t, src)
	}
	app := &countingAppender{}
	m := NewManager(app, testLogger(t), Options{})
	if err := m.ApplyConfig(config("200ms", []string{t1.addr(), t2.addr()}, nil)); err != nil {
		t.Fatal(err)
	}
	if ts := m.Targets(); len(ts) != 2 || ts[0].Health != HealthUnknown {
		t.Errorf("before Run: targets %+v; want 2, health unknown", ts)
	}
	done := make(chan struct{})
	go func() { defer close(done); m.Run(context.Background()) }()
	t.Cleanup(func() { m.Stop(); <-done })

	waitFor(t, 10*time.Second, "both targets to be scraped twice", func() bool {
		return stored(m, t1.addr(), "goroutine") >= 2 && stored(m, t2.addr(), "goroutine") >= 2
	})
	before := loopsOf(m, "a")
	l1, l2 := before[t1.addr()+" goroutine"], before[t2.addr()+" goroutine"]

	// The same configuration, parsed again: nothing restarts.
	if err := m.ApplyConfig(config("200ms", []string{t1.addr(), t2.addr()}, nil)); err != nil {
		t.Fatal(err)
	}
	if after := loopsOf(m, "a"); after[t1.addr()+" goroutine"] != l1 || after[t2.addr()+" goroutine"] != l2 {
		t.Errorf("reapplying the same config replaced loops")
	}

	// t2 goes, job b with t3 comes.
	scrapesBefore := stored(m, t1.addr(), "goroutine")
	if err := m.ApplyConfig(config("200ms", []string{t1.addr()}, []string{t3.addr()})); err != nil {
		t.Fatal(err)
	}
	after := loopsOf(m, "a")
	if after[t1.addr()+" goroutine"] != l1 {
		t.Errorf("the unchanged target's loop was replaced")
	}
	if _, ok := after[t2.addr()+" goroutine"]; ok || len(after) != 1 {
		t.Errorf("job a loops after removing t2: %v; want only t1's", slices.Collect(maps.Keys(after)))
	}
	select {
	case <-l2.done:
	default:
		t.Errorf("the removed target's loop still runs after ApplyConfig returned")
	}
	if got := stored(m, t1.addr(), "goroutine"); got < scrapesBefore {
		t.Errorf("t1's scrape count went from %d to %d: its state was lost", scrapesBefore, got)
	}
	waitFor(t, 10*time.Second, "the new job's target to be scraped", func() bool { return stored(m, t3.addr(), "goroutine") >= 1 })
	if got := len(m.Targets()); got != 2 {
		t.Errorf("%d targets; want t1 and t3", got)
	}
	t2Hits := t2.hitCount("/debug/pprof/goroutine")

	// A changed interval restarts the job's loop.
	if err := m.ApplyConfig(config("300ms", []string{t1.addr()}, []string{t3.addr()})); err != nil {
		t.Fatal(err)
	}
	l1b := loopsOf(m, "a")[t1.addr()+" goroutine"]
	if l1b == l1 {
		t.Errorf("changing scrape_interval kept the old loop")
	}
	select {
	case <-l1.done:
	default:
		t.Errorf("the old loop still runs after its settings changed")
	}
	waitFor(t, 10*time.Second, "the restarted loop to scrape", func() bool { return stored(m, t1.addr(), "goroutine") >= 1 })
	m.Stop()

	// No target was asked more often than its loops scraped it (one
	// scrape may have been cut short by a reload or Stop), so no loop ran
	// twice.
	if got := t2.hitCount("/debug/pprof/goroutine"); got != t2Hits {
		t.Errorf("the removed target was asked %d more times after its removal", got-t2Hits)
	}
	l1.mu.Lock()
	n1 := l1.scrapes
	l1.mu.Unlock()
	l1b.mu.Lock()
	n1 += l1b.scrapes
	l1b.mu.Unlock()
	if hits := uint64(t1.hitCount("/debug/pprof/goroutine")); hits < n1 || hits > n1+2 {
		t.Errorf("t1 was asked %d times for %d scrapes by its two successive loops; a duplicate loop would ask more", hits, n1)
	}
	if err := m.ApplyConfig(config("200ms", nil, nil)); err != ErrStopped {
		t.Errorf("ApplyConfig after Stop = %v; want ErrStopped", err)
	}
}

// TestBearerTokenFile checks that the target sees the token of
// bearer_token_file, read again for each request.
func TestBearerTokenFile(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(1))
	ft := newFakeTarget(t, map[string]http.HandlerFunc{"/debug/pprof/goroutine": serveBytes(profile)})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "hearth.yml")
	// A relative path: relative to the configuration file.
	src := fmt.Sprintf(`
scrape_configs:
  - job_name: auth
    scrape_interval: 100ms
    bearer_token_file: token
    static_configs: [{targets: [%q]}]
    profiling_config: %s
`, ft.addr(), onlyEndpoints("goroutine"))
	if err := os.WriteFile(cfgFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(&countingAppender{}, testLogger(t), Options{})
	if err := m.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	go m.Run(context.Background())
	t.Cleanup(m.Stop)
	auth := func() string { ft.mu.Lock(); defer ft.mu.Unlock(); return ft.lastAuth }
	waitFor(t, 10*time.Second, "a request with the first token", func() bool { return auth() == "Bearer first-token" })
	if err := os.WriteFile(tokenFile, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a request with the rotated token", func() bool { return auth() == "Bearer second-token" })
}

// TestScrapeErrors checks the error of each way a scrape can fail.
func TestScrapeErrors(t *testing.T) {
	big := make([]byte, 4096)
	ft := newFakeTarget(t, map[string]http.HandlerFunc{
		"/big": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		},
		"/chunked": func(w http.ResponseWriter, r *http.Request) {
			// Without a Content-Length the limit is found while reading.
			for range 4 {
				w.Write(big[:1024])
				w.(http.Flusher).Flush()
			}
		},
		"/busy": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Could not enable CPU profiling: cpu profiling already in use", http.StatusInternalServerError)
		},
		"/text":  serveBytes([]byte("not a profile")),
		"/empty": func(w http.ResponseWriter, r *http.Request) {},
	})
	m := startManager(t, &countingAppenderWithIngest{}, fmt.Sprintf(`
scrape_configs:
  - job_name: errors
    scrape_interval: 100ms
    body_size_limit: 2KB
    static_configs: [{targets: [%q]}]
    profiling_config:
      pprof_config:
        process_cpu: {enabled: false}
        memory: {enabled: false}
        allocs: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}
        block: {enabled: false}
        big: {path: /big}
        chunked: {path: /chunked}
        busy: {path: /busy}
        text: {path: /text}
        empty: {path: /empty}
        missing: {path: /missing}
`, ft.addr()), Options{})
	want := map[string]string{
		"big":     "response of 4096 bytes is over body_size_limit 2KiB",
		"chunked": "response is larger than body_size_limit 2KiB",
		"busy":    "HTTP status 500 Internal Server Error: Could not enable CPU profiling: cpu profiling already in use",
		"text":    "refused: parse pprof",
		"empty":   "empty response",
		"missing": "HTTP status 404 Not Found",
	}
	waitFor(t, 10*time.Second, "every endpoint to fail once", func() bool {
		for name := range want {
			if es, _ := endpoint(m, ft.addr(), name); es.Health != HealthDown {
				return false
			}
		}
		return true
	})
	for name, msg := range want {
		es, _ := endpoint(m, ft.addr(), name)
		if !strings.Contains(es.LastError, msg) {
			t.Errorf("%s: lastError = %q; want it to contain %q", name, es.LastError, msg)
		}
	}
}

// TestLargestBodySizeLimit scrapes with the largest limit that parses.
func TestLargestBodySizeLimit(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(1))
	ft := newFakeTarget(t, map[string]http.HandlerFunc{"/debug/pprof/goroutine": serveBytes(profile)})
	app := &countingAppender{}
	m := startManager(t, app, fmt.Sprintf(`
scrape_configs:
  - job_name: a
    scrape_interval: 100ms
    body_size_limit: 9223372036854775807
    static_configs: [{targets: [%q]}]
    profiling_config: %s
`, ft.addr(), onlyEndpoints("goroutine")), Options{})
	waitFor(t, 10*time.Second, "a stored scrape", func() bool { return stored(m, ft.addr(), "goroutine") > 0 })
	if es, _ := endpoint(m, ft.addr(), "goroutine"); es.LastScrapeBytes != int64(len(profile)) {
		t.Errorf("last scrape read %d bytes; want %d", es.LastScrapeBytes, len(profile))
	}
}

// countingAppenderWithIngest decodes profiles as the ingester does, without
// storing them, so that a malformed profile is refused.
type countingAppenderWithIngest struct{ countingAppender }

func (a *countingAppenderWithIngest) Ingest(ctx context.Context, tenant string, r *ingest.Request) error {
	if _, err := ingest.Decode(r, ingest.DefaultProfileLimits(), time.Now()); err != nil {
		return err
	}
	return a.countingAppender.Ingest(ctx, tenant, r)
}

// TestRequestLabelsAndTenant checks what a scrape hands to the appender.
func TestRequestLabelsAndTenant(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(2))
	ft := newFakeTarget(t, map[string]http.HandlerFunc{"/debug/pprof/goroutine": serveBytes(profile), "/debug/pprof/allocs": serveBytes(profile)})
	app := &countingAppender{}
	m := startManager(t, app, fmt.Sprintf(`
global:
  external_labels: {region: eu, env: global}
scrape_configs:
  - job_name: team
    tenant: team-a
    scrape_interval: 100ms
    static_configs: [{targets: [%q], labels: {service_name: checkout, env: prod}}]
    profiling_config: %s
`, ft.addr(), onlyEndpoints("allocs")), Options{})
	waitFor(t, 10*time.Second, "a stored scrape", func() bool { return app.n.Load() > 0 })
	m.Stop()
	app.mu.Lock()
	defer app.mu.Unlock()
	if got := slices.Collect(maps.Keys(app.tenants)); !slices.Equal(got, []string{"team-a"}) {
		t.Errorf("tenants = %v; want [team-a]", got)
	}
	r := app.last
	wantLabels := map[string]string{"job": "team", "instance": ft.addr(), "service_name": "checkout", "env": "prod", "region": "eu"}
	if diff := cmp.Diff(wantLabels, r.Labels.Map()); diff != "" {
		t.Errorf("request labels (-want +got):\n%s", diff)
	}
	if r.Name != "" || r.Format != "pprof" || !r.DropFirst || !slices.Equal(r.SampleTypes, []string{"alloc_objects", "alloc_space"}) || r.SampleTypeConfig != nil {
		t.Errorf("request = name %q format %q dropFirst %v sampleTypes %v stc %q; want no name, pprof, drop first, alloc_* and no sample type config",
			r.Name, r.Format, r.DropFirst, r.SampleTypes, r.SampleTypeConfig)
	}
	if r.From == 0 || r.Until < r.From {
		t.Errorf("request times from %d until %d; want from <= until", r.From, r.Until)
	}

	// The status as JSON has Prometheus' field names.
	b, err := json.Marshal(m.TargetsData())
	if err != nil {
		t.Fatal(err)
	}
	var data map[string][]map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	if len(data["activeTargets"]) != 1 || data["droppedTargets"] == nil {
		t.Fatalf("targets JSON %s; want one active target and an empty dropped list", b)
	}
	for _, field := range []string{"discoveredLabels", "labels", "scrapePool", "scrapeUrl", "lastError", "lastScrape", "lastScrapeDuration", "health", "endpoints"} {
		if _, ok := data["activeTargets"][0][field]; !ok {
			t.Errorf("target JSON lacks %q: %s", field, b)
		}
	}
}

func TestSampleTypeConfig(t *testing.T) {
	cfg := mustLoad(t, `
scrape_configs:
  - job_name: a
    profiling_config:
      pprof_config:
        allocs: {path: /debug/pprof/delta_heap, delta: false}
        custom_delta: {path: /c, delta: true, keep_sample_type: [{type: samples}]}
        custom_plain: {path: /p}
`)
	sc := cfg.ScrapeConfigs[0]
	got := map[string]ingest.SampleTypeConfig{}
	for _, ep := range sc.Endpoints() {
		b := sampleTypeConfig(sc, ep)
		if b == nil {
			got[ep.Name] = nil
			continue
		}
		stc, err := ingest.ParseSampleTypeConfig(b)
		if err != nil {
			t.Fatalf("%s: %v", ep.Name, err)
		}
		got[ep.Name] = stc
	}
	notCum := &ingest.SampleTypeConfigEntry{}
	want := map[string]ingest.SampleTypeConfig{
		"process_cpu": nil, "memory": nil, "goroutine": nil, "mutex": nil, "block": nil,
		// Served as deltas already: storage must not subtract again.
		"allocs":       {"alloc_objects": notCum, "alloc_space": notCum},
		"custom_delta": {"samples": {Cumulative: true}},
		"custom_plain": {"alloc_objects": notCum, "alloc_space": notCum, "contentions": notCum, "delay": notCum},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sample type configs (-want +got):\n%s", diff)
	}
}

func TestOffsetsSpread(t *testing.T) {
	cfg := mustLoad(t, "scrape_configs: [{job_name: a, scrape_interval: 10s}]")
	sc := cfg.ScrapeConfigs[0]
	const n, buckets = 200, 10
	var count [buckets]int
	for i := range n {
		tg := newTarget(sc, nil, fmt.Sprintf("10.0.%d.%d:6060", i/256, i%256), nil)
		l := &loop{spec: newLoopSpec(sc, tg, sc.Endpoints()[0], "")}
		off := l.offset()
		if off < 0 || off >= 10*time.Second {
			t.Fatalf("offset %s is outside the interval", off)
		}
		if again := (&loop{spec: newLoopSpec(sc, tg, sc.Endpoints()[0], "")}).offset(); again != off {
			t.Fatalf("offset of the same target changed: %s, then %s", off, again)
		}
		now := time.Unix(1_700_000_000, 123456789)
		if d := l.firstDelay(now); d < 0 || d >= 10*time.Second || (now.Add(d).UnixNano()-int64(off))%int64(10*time.Second) != 0 {
			t.Fatalf("first delay %s from %s does not reach offset %s", d, now, off)
		}
		count[int(off/(time.Second))]++
	}
	// 200 targets over 10 one-second slots: every slot gets some, none
	// gets most.
	for i, c := range count {
		if c == 0 || c > n/buckets*3 {
			t.Errorf("slot %d holds %d of %d targets: %v", i, c, n, count)
		}
	}
}

func TestParseFileSD(t *testing.T) {
	for _, tc := range []struct{ ext, src, want string }{
		{".json", `[{"targets": ["a:1"], "labels": {"x": "y"}}]`, ""},
		{".yml", "- targets: [a:1]\n  labels: {x: y}\n", ""},
		{".yaml", "", ""},
		{".json", `null`, ""},
		{".json", `[{"targets": ["a:1"], "label": {}}]`, `unknown field "label"`},
		{".yml", "- targets: [a:1]\n  lables: {}\n", `parse YAML: line 2: unknown field "lables"`},
		{".json", `[{"targets": ["a"]}]`, `entry 0: target "a": want host:port`},
		{".json", `[{"targets": ["a:1"], "labels": {"__x": "y"}}]`, `entry 0: labels: label name "__x" is reserved`},
		{".json", `[{"targets": ["a:1"], "labels": {"__meta_x": "y"}}]`, ""},
		{".json", `[{"targets": ["a:1"]}] []`, "data after the list"},
		{".json", `[null]`, "entry 0 is empty"},
		{".txt", `[]`, `unknown file extension ".txt"`},
	} {
		_, err := ParseFileSD([]byte(tc.src), tc.ext)
		if tc.want == "" {
			if err != nil {
				t.Errorf("ParseFileSD(%q, %s) = %v; want no error", tc.src, tc.ext, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFileSD(%q, %s) = %v; want an error containing %q", tc.src, tc.ext, err, tc.want)
		}
	}
}

// TestHTTPSWithBasicAuth scrapes an https target whose certificate is
// trusted through tls_config's ca_file, with basic auth from a file.
func TestHTTPSWithBasicAuth(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(1))
	var mu sync.Mutex
	var gotUser, gotPass string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		gotUser, gotPass = u, p
		mu.Unlock()
		w.Write(profile)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app := &countingAppender{}
	m := startManager(t, app, fmt.Sprintf(`
scrape_configs:
  - job_name: tls
    scheme: https
    scrape_interval: 100ms
    basic_auth: {username: scraper, password_file: %q}
    tls_config: {ca_file: %q, server_name: example.com}
    enable_http2: false
    static_configs: [{targets: [%q]}]
    profiling_config: %s
`, passFile, caFile, srv.Listener.Addr().String(), onlyEndpoints("goroutine")), Options{})
	waitFor(t, 10*time.Second, "a stored https scrape", func() bool { return stored(m, srv.Listener.Addr().String(), "goroutine") > 0 })
	mu.Lock()
	defer mu.Unlock()
	if gotUser != "scraper" || gotPass != "s3cret" {
		t.Errorf("target saw basic auth %q:%q; want scraper:s3cret", gotUser, gotPass)
	}
}
