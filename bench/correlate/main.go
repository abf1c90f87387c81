// Command correlate measures Hearth's joins of profiles with spans: a
// flame graph of one service's hour kept to the samples of the spans an
// event filter selects, and the spans whose samples ran a function.
//
//	go build -o /tmp/hearth ./cmd/hearth
//	go run ./bench/correlate -bin /tmp/hearth                 # one hour, as the issue asks
//	go run ./bench/correlate -bin /tmp/hearth -window 5m      # a smaller trial, same rate
//
// The spans are bench/spans' workload (the events benchmark's) restricted
// to a few services, over -window at -rate spans per second; the CPU
// profiles are those of the same services' pods, one per pod and 10 s,
// whose samples carry the pprof labels of the spans that took them. Both
// are made from the seed as they are sent, and what was sent is kept to
// check every answer. See bench/README.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
	"github.com/hearth-profiler/hearth/bench/spans"
)

type config struct {
	bin, corpus, tenant, jsonPath string
	services                      []string
	target, route                 string
	minDur                        time.Duration
	window                        time.Duration
	rate                          float64
	seed                          int64
	clients, profileClients       int
	workers, repeats              int
	stable, settleMax             time.Duration
	restart, keep                 bool
	serverArgs                    []string
	spanFilterAim, runningAim     time.Duration
}

func main() {
	var cfg config
	var services, serverArgs string
	flag.StringVar(&cfg.bin, "bin", "", "hearth binary (required): go build -o /tmp/hearth ./cmd/hearth")
	flag.StringVar(&cfg.corpus, "corpus", "bench/corpus", "directory of the recorded Go CPU profiles (cpu-NN.pb.gz) whose stacks the services run")
	flag.DurationVar(&cfg.window, "window", time.Hour, "the range of the data, ending now (a multiple of 10s)")
	flag.Float64Var(&cfg.rate, "rate", 2500, "spans per second of the workload, over every service")
	flag.StringVar(&services, "services", "", "the services that serve requests, comma-separated (default: the fleet's three busiest)")
	flag.StringVar(&cfg.target, "service", "", "the service the queries are about (default: the first of -services)")
	flag.StringVar(&cfg.route, "route", "", "the http.route of the span filter (default: the service's busiest route)")
	flag.DurationVar(&cfg.minDur, "min-duration", 0, "the span filter's duration > bound (default: half the route's median duration, in whole ms)")
	flag.Int64Var(&cfg.seed, "seed", 1, "the seed of the spans and the profiles")
	flag.IntVar(&cfg.clients, "clients", 4, "concurrent OTLP gRPC clients sending spans")
	flag.IntVar(&cfg.profileClients, "profile-clients", 4, "concurrent clients sending profiles to /ingest")
	flag.IntVar(&cfg.workers, "workers", runtime.NumCPU(), "goroutines making the spans and the profiles")
	flag.StringVar(&cfg.tenant, "tenant", "bench", "X-Scope-OrgID of every request")
	flag.DurationVar(&cfg.stable, "stable", 30*time.Second, "after POST /-/flush, wait until the blocks have not changed for this long")
	flag.DurationVar(&cfg.settleMax, "settle-max", 5*time.Minute, "longest wait for the blocks to settle")
	flag.BoolVar(&cfg.restart, "restart", true, "restart the server before the queries, so that their first call is cold")
	flag.IntVar(&cfg.repeats, "repeats", 5, "warm calls of each query after the first")
	flag.StringVar(&serverArgs, "server-args", "", "more flags of hearth server, separated by spaces")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the server's data directory and log")
	flag.StringVar(&cfg.jsonPath, "json", "/tmp/correlate.json", "write every figure here as JSON")
	flag.DurationVar(&cfg.spanFilterAim, "aim-flamegraph", 500*time.Millisecond, "the issue's aim for the span-filtered flame graph")
	flag.DurationVar(&cfg.runningAim, "aim-running", time.Second, "the issue's aim for the function-to-requests query")
	flag.Parse()
	if cfg.bin == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/correlate -bin PATH [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if _, err := os.Stat(cfg.bin); err != nil {
		fmt.Fprintf(os.Stderr, "correlate: -bin %s: %v\n", cfg.bin, err)
		os.Exit(2)
	}
	for _, s := range strings.Split(services, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.services = append(cfg.services, s)
		}
	}
	cfg.serverArgs = strings.Fields(serverArgs)
	log.SetFlags(log.Ltime)
	log.SetPrefix("correlate: ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if res != nil {
		js, _ := json.MarshalIndent(res, "", "  ")
		if werr := os.WriteFile(cfg.jsonPath, append(js, '\n'), 0o644); werr != nil {
			log.Print(werr)
		}
		printTable(os.Stdout, res)
		log.Printf("every figure in %s", cfg.jsonPath)
		if err == nil && len(res.Failed) > 0 {
			err = fmt.Errorf("%d checks failed: %s", len(res.Failed), strings.Join(res.Failed, "; "))
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}

// result is every figure of a run.
type result struct {
	Command    string   `json:"command"`
	Started    string   `json:"started"`
	Machine    string   `json:"machine"`
	LoadBefore string   `json:"loadavg_before"`
	LoadAfter  string   `json:"loadavg_after"`
	Services   []string `json:"services"`
	Target     string   `json:"service"`
	Filter     string   `json:"span_filter"`
	Function   string   `json:"running"`
	From       int64    `json:"from_unix"`
	Until      int64    `json:"until_unix"`
	Workload   struct {
		Config spans.Config `json:"config"`
		Stats  spans.Stats  `json:"stats"`
	} `json:"workload"`
	Sent               truth            `json:"sent"`
	SpansSend          spans.SendResult `json:"spans_send"`
	ProfilesSend       profileSend      `json:"profiles_send"`
	IngestPeakRSSMiB   float64          `json:"ingest_peak_rss_MiB"`
	ServerCPUSeconds   float64          `json:"ingest_server_cpu_s"`
	FlushSeconds       float64          `json:"flush_s"`
	Settled            string           `json:"settled"`
	Disk               hearthproc.Disk  `json:"disk"`
	RestartSeconds     float64          `json:"restart_to_ready_s,omitempty"`
	Queries            []queryResult    `json:"queries"`
	QueryPeakRSSMiB    float64          `json:"query_peak_rss_MiB"`
	HWMMiB             float64          `json:"vmhwm_MiB"`
	QueryMachineCores  float64          `json:"query_machine_cores_busy"`
	QueryServerCores   float64          `json:"query_server_cores_busy"`
	Failed             []string         `json:"failed_checks,omitempty"`
	GenerateCPUSeconds float64          `json:"driver_cpu_s"`
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// choose fills in the defaults that depend on the fleet: the three
// busiest services, the first of them, its busiest route and half that
// route's median duration.
func choose(cfg *config) ([]spans.ServiceInfo, error) {
	w, err := spans.New(spans.DefaultConfig(1, time.Now(), time.Hour))
	if err != nil {
		return nil, err
	}
	fleet := w.ServiceInfo()
	if len(cfg.services) == 0 {
		byShare := slices.Clone(fleet)
		slices.SortStableFunc(byShare, func(a, b spans.ServiceInfo) int { return -cmpFloat(a.Share, b.Share) })
		for _, s := range byShare[:3] {
			cfg.services = append(cfg.services, s.Name)
		}
	}
	if cfg.target == "" {
		cfg.target = cfg.services[0]
	}
	if !slices.Contains(cfg.services, cfg.target) {
		return nil, fmt.Errorf("-service %s: not among -services %s", cfg.target, strings.Join(cfg.services, ","))
	}
	i := slices.IndexFunc(fleet, func(s spans.ServiceInfo) bool { return s.Name == cfg.target })
	if i < 0 {
		return nil, fmt.Errorf("-service %s: not in the fleet (%s)", cfg.target, strings.Join(spans.ServiceNames(), ", "))
	}
	routes := fleet[i].Routes
	if cfg.route == "" {
		cfg.route = routes[0].Template
	}
	ri := slices.IndexFunc(routes, func(r spans.RouteInfo) bool { return r.Template == cfg.route })
	if ri < 0 {
		var ts []string
		for _, r := range routes {
			ts = append(ts, r.Template)
		}
		return nil, fmt.Errorf("-route %s: %s has %s", cfg.route, cfg.target, strings.Join(ts, ", "))
	}
	if cfg.minDur == 0 {
		cfg.minDur = max(time.Millisecond, (routes[ri].Median / 2).Truncate(time.Millisecond))
	}
	return fleet, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func run(ctx context.Context, cfg config) (*result, error) {
	if _, err := choose(&cfg); err != nil {
		return nil, err
	}
	corpus, err := loadCorpusStacks(cfg.corpus)
	if err != nil {
		return nil, err
	}
	if cfg.window <= 0 || cfg.window%profileWindow != 0 {
		return nil, fmt.Errorf("-window %v: want a positive multiple of %v", cfg.window, profileWindow)
	}
	n := int64(math.Round(cfg.rate * cfg.window.Seconds()))
	end := time.Now().Truncate(profileWindow)
	wcfg := spans.DefaultConfig(n, end, cfg.window)
	wcfg.Seed, wcfg.Services = cfg.seed, cfg.services
	w, err := spans.New(wcfg)
	if err != nil {
		return nil, err
	}
	from, until := end.Add(-cfg.window).Unix(), end.Unix()
	res := &result{Command: strings.Join(os.Args, " "), Started: time.Now().UTC().Format(time.RFC3339),
		Machine:  fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Services: cfg.services, Target: cfg.target, Function: knownRegexp, From: from, Until: until,
		Filter: fmt.Sprintf(`{ resource.service.name = %q && span.http.route = %q && duration > %dms }`, cfg.target, cfg.route, cfg.minDur.Milliseconds())}
	res.Workload.Config = wcfg
	if cfg.minDur%time.Millisecond != 0 {
		return res, fmt.Errorf("-min-duration %v: want whole milliseconds", cfg.minDur)
	}

	work, err := os.MkdirTemp("", "hearth-correlate-")
	if err != nil {
		return res, err
	}
	if cfg.keep {
		log.Printf("data and log in %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	addr, err := hearthproc.FreeAddr()
	if err != nil {
		return res, err
	}
	grpcAddr, err := hearthproc.FreeAddr()
	if err != nil {
		return res, err
	}
	hcfg := hearthproc.Config{Binary: cfg.bin, Addr: addr, DataDir: filepath.Join(work, "data"), LogPath: filepath.Join(work, "hearth.log"),
		OTLPGRPCAddr: grpcAddr, ReadyTimeout: 5 * time.Minute, Args: cfg.serverArgs}
	srv, _, err := hearthproc.Start(hcfg)
	if err != nil {
		return res, err
	}
	defer func() {
		if srv != nil {
			srv.Kill()
		}
	}()
	res.LoadBefore = loadavg()
	self0 := hearthproc.SelfCPUSeconds()
	rss := hearthproc.SampleRSS(srv.PID(), 100*time.Millisecond)
	st0, err := hearthproc.ReadStat(srv.PID())
	if err != nil {
		return res, err
	}

	// The spans, made as they are sent.
	log.Printf("sending about %d spans of %s over %v (seed %d) with %d clients", n, strings.Join(cfg.services, ", "), cfg.window, cfg.seed, cfg.clients)
	src := w.LiveSource(ctx, cfg.workers)
	sent, err := spans.Send(ctx, spans.SendConfig{Addr: grpcAddr, Tenant: cfg.tenant, Clients: cfg.clients, RetryFor: time.Minute,
		Progress: func(n int64) { fmt.Fprintf(os.Stderr, "\r%d spans", n) }}, src)
	fmt.Fprintln(os.Stderr)
	res.SpansSend = sent
	res.Workload.Stats, _ = spans.StatsOf(src)
	if err != nil {
		return res, fmt.Errorf("send spans: %w", err)
	}
	if sent.Failed > 0 || sent.Rejected > 0 {
		return res, fmt.Errorf("spans: %d requests failed, %d spans refused: %s", sent.Failed, sent.Rejected, strings.Join(sent.Errors, "; "))
	}
	log.Printf("spans: %d in %.0f s (%.0f spans/s)", sent.Spans, sent.Seconds, sent.SpansPerSecond)

	// The profiles of the same requests.
	m := &model{w: w, services: cfg.services, target: cfg.target, route: cfg.route, minDur: cfg.minDur, seed: uint64(cfg.seed), corpus: corpus}
	log.Printf("sending the CPU profiles of %s: one per pod and %v", strings.Join(cfg.services, ", "), profileWindow)
	tr, ps, err := sendProfiles(ctx, m, cfg, addr)
	res.Sent, res.ProfilesSend = tr, ps
	if err != nil {
		return res, err
	}
	log.Printf("profiles: %d (%.1f MB of pprof) in %.0f s; %s: %d samples in %d pprof rows",
		ps.Profiles, float64(ps.Bytes)/1e6, ps.Seconds, cfg.target, tr.Samples[cfg.target], tr.Rows[cfg.target])
	res.IngestPeakRSSMiB = rss.Close()
	if st, err := hearthproc.ReadStat(srv.PID()); err == nil {
		res.ServerCPUSeconds = st.CPUSeconds - st0.CPUSeconds
	}
	res.GenerateCPUSeconds = hearthproc.SelfCPUSeconds() - self0

	// Written out: cut into blocks, then wait for the blocks to settle.
	fl := hearthproc.Flush(addr, "/-/flush")
	res.FlushSeconds = fl.Seconds
	if fl.Method != "endpoint" {
		return res, fmt.Errorf("POST /-/flush answered %d", fl.Status)
	}
	if res.Settled, err = settle(hcfg.DataDir, cfg.stable, cfg.settleMax); err != nil {
		return res, err
	}
	if res.Disk, err = hearthproc.MeasureDisk(hcfg.DataDir); err != nil {
		return res, err
	}
	log.Printf("flushed in %.1f s; %s", fl.Seconds, res.Settled)

	if cfg.restart {
		if _, err := srv.Stop(2 * time.Minute); err != nil {
			log.Printf("stop before the queries: %v", err)
		}
		srv = nil
		var ready time.Duration
		if srv, ready, err = hearthproc.Start(hcfg); err != nil {
			return res, fmt.Errorf("restart before the queries: %w", err)
		}
		res.RestartSeconds = ready.Seconds()
	}

	// Queries.
	rss = hearthproc.SampleRSS(srv.PID(), 100*time.Millisecond)
	qMach0, qt0 := hearthproc.MachineBusySeconds(), time.Now()
	qs0, _ := hearthproc.ReadStat(srv.PID())
	for _, q := range queries(cfg, res, tr) {
		qr := runQuery(addr, cfg.tenant, srv.PID(), q, cfg.repeats)
		log.Printf("%-36s %s", q.name, qr.summary())
		if qr.Error != "" {
			res.Failed = append(res.Failed, q.name+": "+qr.Error)
		}
		res.Queries = append(res.Queries, qr)
	}
	res.QueryPeakRSSMiB = rss.Close()
	if wall := time.Since(qt0).Seconds(); wall > 0 {
		res.QueryMachineCores = (hearthproc.MachineBusySeconds() - qMach0) / wall
		if st, err := hearthproc.ReadStat(srv.PID()); err == nil {
			res.QueryServerCores = (st.CPUSeconds - qs0.CPUSeconds) / wall
			res.HWMMiB = st.HWMMiB
		}
	}
	res.LoadAfter = loadavg()
	_, err = srv.Stop(2 * time.Minute)
	srv = nil
	return res, err
}

// settle waits until the blocks under dir have not changed for stable.
func settle(dir string, stable, maxWait time.Duration) (string, error) {
	t0 := time.Now()
	var last string
	var lastChange time.Time
	for {
		d, err := hearthproc.MeasureDisk(dir)
		if err != nil {
			return "", err
		}
		state := fmt.Sprintf("%d blocks, %d bytes in blocks", d.Blocks, d.BlocksBytes)
		if state != last {
			last, lastChange = state, time.Now()
		}
		if time.Since(lastChange) >= stable {
			return fmt.Sprintf("%s, unchanged for %v", state, stable), nil
		}
		if time.Since(t0) > maxWait {
			return fmt.Sprintf("%s, still changing after %v", state, maxWait), nil
		}
		time.Sleep(time.Second)
	}
}

// profileSend is how the profiles went in.
type profileSend struct {
	Profiles int64       `json:"profiles"`
	Bytes    int64       `json:"bytes"`
	Retries  int64       `json:"retries"`
	Seconds  float64     `json:"seconds"`
	Status   map[int]int `json:"status_codes"`
}

// sendProfiles makes the profiles of m and posts them to /ingest with
// cfg.profileClients clients, each gzipping its own.
func sendProfiles(ctx context.Context, m *model, cfg config, addr string) (truth, profileSend, error) {
	ps := profileSend{Status: map[int]int{}}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan profileOut, 4*cfg.profileClients)
	ns := map[string]string{}
	for _, si := range m.w.ServiceInfo() {
		ns[si.Name] = si.Namespace
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.profileClients}, Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	var done atomic.Int64
	for range cfg.profileClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for p := range ch {
				buf.Reset()
				if err := p.prof.Write(&buf); err != nil {
					cancel(fmt.Errorf("encode the profile of %s at %d: %w", p.pod, p.from, err))
					continue
				}
				q := url.Values{}
				q.Set("name", fmt.Sprintf("%s{service.namespace=%s,k8s.pod.name=%s,cloud.region=%s}", p.service, ns[p.service], p.pod, p.region))
				q.Set("from", strconv.FormatInt(p.from, 10))
				q.Set("until", strconv.FormatInt(p.from+int64(profileWindow/time.Second), 10))
				q.Set("format", "pprof")
				code, retries, err := post(ctx, client, "http://"+addr+"/ingest?"+q.Encode(), cfg.tenant, buf.Bytes())
				mu.Lock()
				ps.Status[code]++
				ps.Retries += int64(retries)
				ps.Bytes += int64(buf.Len())
				mu.Unlock()
				if err != nil {
					cancel(fmt.Errorf("ingest the profile of %s at %d: %w", p.pod, p.from, err))
					continue
				}
				if n := done.Add(1); n%200 == 0 {
					fmt.Fprintf(os.Stderr, "\r%d profiles", n)
				}
			}
		}()
	}
	g, err := newGenerator(m, func(p profileOut) error {
		select {
		case ch <- p:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	if err != nil {
		close(ch)
		wg.Wait()
		return truth{}, ps, err
	}
	tr, genErr := g.run(ctx, cfg.workers)
	close(ch)
	wg.Wait()
	fmt.Fprintln(os.Stderr)
	ps.Profiles, ps.Seconds = done.Load(), time.Since(t0).Seconds()
	if cause := context.Cause(ctx); cause != nil {
		return tr, ps, cause
	}
	if genErr != nil {
		return tr, ps, genErr
	}
	if ps.Profiles != tr.Profiles {
		return tr, ps, fmt.Errorf("%d profiles made, %d stored", tr.Profiles, ps.Profiles)
	}
	return tr, ps, nil
}

// post sends one profile, retrying for up to a minute while the server
// says it is busy (429, 503), as the SDKs do.
func post(ctx context.Context, client *http.Client, u, tenant string, body []byte) (int, int, error) {
	deadline := time.Now().Add(time.Minute)
	for retries := 0; ; retries++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return 0, retries, err
		}
		req.Header.Set("X-Scope-OrgID", tenant)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			return 0, retries, err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			return resp.StatusCode, retries, nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && time.Now().Before(deadline):
			wait := 100 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-ctx.Done():
				return resp.StatusCode, retries, ctx.Err()
			case <-time.After(wait):
			}
		default:
			return resp.StatusCode, retries, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
		}
	}
}

// query is one timed request with the check of its answer.
type query struct {
	name, about string
	path        string
	params      url.Values
	aim         time.Duration
	check       func(data json.RawMessage) (string, error)
}

type queryResult struct {
	Name            string    `json:"name"`
	About           string    `json:"about"`
	Request         string    `json:"request"`
	ColdMs          float64   `json:"cold_ms"`
	WarmMs          []float64 `json:"warm_ms"`
	WarmMedianMs    float64   `json:"warm_median_ms"`
	ColdServerCPUMs float64   `json:"cold_server_cpu_ms"`
	WarmServerCPUMs float64   `json:"warm_server_cpu_ms_median"`
	ResponseBytes   int       `json:"response_bytes"`
	AimMs           float64   `json:"aim_ms,omitempty"`
	Check           string    `json:"check"`
	Error           string    `json:"error,omitempty"`
}

func (qr queryResult) summary() string {
	s := fmt.Sprintf("%.0f ms cold, %.0f ms warm (server CPU %.0f / %.0f ms)", qr.ColdMs, qr.WarmMedianMs, qr.ColdServerCPUMs, qr.WarmServerCPUMs)
	if qr.AimMs > 0 {
		s += fmt.Sprintf(", aim < %.0f ms", qr.AimMs)
	}
	if qr.Error != "" {
		return s + "; FAILED: " + qr.Error
	}
	return s + "; " + qr.Check
}

func runQuery(addr, tenant string, pid int, q query, repeats int) queryResult {
	qr := queryResult{Name: q.name, About: q.about, Request: q.path + "?" + q.params.Encode(), AimMs: hearthproc.Ms(q.aim)}
	client := &http.Client{Timeout: 5 * time.Minute}
	defer client.CloseIdleConnections()
	call := func() (wall, cpu time.Duration, body []byte, err error) {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+qr.Request, nil)
		if err != nil {
			return 0, 0, nil, err
		}
		req.Header.Set("X-Scope-OrgID", tenant)
		cpu0, _ := hearthproc.ThreadCPU(pid)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, nil, err
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		wall = time.Since(t0)
		cpu1, _ := hearthproc.ThreadCPU(pid)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %.300s", resp.Status, body)
		}
		return wall, cpu1 - cpu0, body, err
	}
	wall, cpu, body, err := call()
	if err != nil {
		qr.Error = err.Error()
		return qr
	}
	qr.ColdMs, qr.ColdServerCPUMs, qr.ResponseBytes = hearthproc.Ms(wall), hearthproc.Ms(cpu), len(body)
	var ans struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "success" {
		qr.Error = fmt.Sprintf("answer: %v %.300s", err, body)
		return qr
	}
	if qr.Check, err = q.check(ans.Data); err != nil {
		qr.Error = err.Error()
	}
	var cpus []float64
	for range repeats {
		wall, cpu, _, err := call()
		if err != nil {
			qr.Error = strings.TrimPrefix(qr.Error+"; a warm call: "+err.Error(), "; ")
			break
		}
		qr.WarmMs = append(qr.WarmMs, hearthproc.Ms(wall))
		cpus = append(cpus, hearthproc.Ms(cpu))
	}
	qr.WarmMedianMs, qr.WarmServerCPUMs = hearthproc.Median(qr.WarmMs), hearthproc.Median(cpus)
	return qr
}

// queries are the two of the issue, each beside a reference: the
// flame graph of the same hour without the span filter, and the
// function-to-requests query over every service.
func queries(cfg config, res *result, tr truth) []query {
	rng := func() url.Values {
		return url.Values{"from": {strconv.FormatInt(res.From, 10)}, "until": {strconv.FormatInt(res.Until, 10)}}
	}
	period := int64(samplePeriod)
	sel := fmt.Sprintf("cpu{service_name=%q}", cfg.target)
	filtered := rng()
	filtered.Set("query", sel)
	filtered.Set("spans", res.Filter)
	filtered.Set("max_nodes", "2048")
	whole := rng()
	whole.Set("query", sel)
	whole.Set("max_nodes", "2048")
	running := func(q string) url.Values {
		v := rng()
		v.Set("q", q)
		v.Set("running", knownRegexp)
		v.Set("by", "span.http.route")
		v.Set("calc", "count,sum(cpu)")
		v.Set("order", "sum(cpu) desc")
		return v
	}
	return []query{
		{name: "flame graph, span filter", path: "/api/v1/query/flamegraph", params: filtered, aim: cfg.spanFilterAim,
			about: "the hour of one service, kept to the samples of the spans (or their local root spans) the filter selects",
			check: flameCheck(tr.SelectedSamples*period, tr.SelectedSpans, true)},
		{name: "flame graph, no span filter", path: "/api/v1/query/flamegraph", params: whole,
			about: "the same hour of the same service, every sample: the reference",
			check: flameCheck(tr.Samples[cfg.target]*period, 0, false)},
		{name: "function to requests, one service", path: "/api/v1/events/query", params: running(fmt.Sprintf("{ resource.service.name = %q }", cfg.target)),
			aim: cfg.runningAim, about: "the service's spans whose own samples ran the function, by route: count and sum(cpu)",
			check: runningCheck(tr.RunTarget)},
		{name: "function to requests, all services", path: "/api/v1/events/query", params: running("{ }"), aim: cfg.runningAim,
			about: "the same over every service's spans and profiles",
			check: runningCheck(tr.RunAll)},
	}
}

// flameCheck checks a flame graph's total and, with a span filter, the
// number of spans it selected.
func flameCheck(total, spans int64, filtered bool) func(json.RawMessage) (string, error) {
	return func(data json.RawMessage) (string, error) {
		var fg struct {
			Total     int64 `json:"total"`
			NumNodes  int   `json:"numNodes"`
			Truncated bool  `json:"truncated"`
			Spans     *struct {
				Spans int64 `json:"spans"`
			} `json:"spans"`
		}
		if err := json.Unmarshal(data, &fg); err != nil {
			return "", fmt.Errorf("flame graph: %w", err)
		}
		samples := fg.Total / int64(samplePeriod)
		msg := fmt.Sprintf("%d samples, %d nodes", samples, fg.NumNodes)
		var errs []string
		if fg.Total != total || total == 0 {
			errs = append(errs, fmt.Sprintf("total %d ns, want %d (the samples sent)", fg.Total, total))
		}
		if filtered {
			if fg.Spans == nil {
				errs = append(errs, "the answer names no span selection")
			} else {
				msg = fmt.Sprintf("%d spans selected, %s", fg.Spans.Spans, msg)
				if fg.Spans.Spans != spans {
					errs = append(errs, fmt.Sprintf("%d spans selected, want %d", fg.Spans.Spans, spans))
				}
			}
		}
		if len(errs) > 0 {
			return msg, errors.New(strings.Join(errs, "; "))
		}
		return msg + ": as sent", nil
	}
}

// runningCheck checks the groups of a function-to-requests query: every
// route that ran the function, with its count and time, in the order of
// that time.
func runningCheck(want map[string]runGroup) func(json.RawMessage) (string, error) {
	return func(data json.RawMessage) (string, error) {
		var ans struct {
			Groups []struct {
				By     map[string]any     `json:"by"`
				Values map[string]float64 `json:"values"`
			} `json:"groups"`
			Matched int64 `json:"matched"`
		}
		if err := json.Unmarshal(data, &ans); err != nil {
			return "", fmt.Errorf("events answer: %w", err)
		}
		type group struct {
			route string
			runGroup
		}
		var exp []group
		var spans int64
		for r, g := range want {
			exp = append(exp, group{r, g})
			spans += g.Count
		}
		slices.SortFunc(exp, func(a, b group) int {
			if a.CPUNs != b.CPUNs {
				return cmpFloat(float64(b.CPUNs), float64(a.CPUNs))
			}
			return strings.Compare(a.route, b.route)
		})
		var got []group
		for _, g := range ans.Groups {
			route, _ := g.By["span.http.route"].(string)
			got = append(got, group{route, runGroup{Count: int64(g.Values["count"]), CPUNs: int64(g.Values["sum(cpu)"])}})
		}
		if len(exp) == 0 {
			return "", errors.New("no span was sent running the function: nothing to check")
		}
		msg := fmt.Sprintf("%d routes, %d spans", len(got), ans.Matched)
		first := "none"
		if len(got) > 0 {
			first = got[0].route
			msg += fmt.Sprintf("; first %s: %d spans, %v in the function", first, got[0].Count, time.Duration(got[0].CPUNs))
		}
		var errs []string
		if ans.Matched != spans {
			errs = append(errs, fmt.Sprintf("%d spans matched, want %d", ans.Matched, spans))
		}
		if len(got) == 0 || got[0].route != exp[0].route {
			errs = append(errs, fmt.Sprintf("ranked first %s, want %s", first, exp[0].route))
		}
		for i := range max(len(got), len(exp)) {
			switch {
			case i >= len(got):
				errs = append(errs, fmt.Sprintf("route %s missing", exp[i].route))
			case i >= len(exp):
				errs = append(errs, fmt.Sprintf("route %s not expected", got[i].route))
			case got[i] != exp[i]:
				errs = append(errs, fmt.Sprintf("group %d: %s %d spans %d ns, want %s %d spans %d ns", i, got[i].route, got[i].Count, got[i].CPUNs, exp[i].route, exp[i].Count, exp[i].CPUNs))
			}
		}
		if len(errs) > 0 {
			return msg, errors.New(strings.Join(errs, "; "))
		}
		return msg + ": as sent", nil
	}
}

func printTable(out io.Writer, r *result) {
	st := r.Workload.Stats
	fmt.Fprintf(out, "correlate: %s over %v (seed %d), load before %s, after %s\n",
		strings.Join(r.Services, ", "), r.Workload.Config.Window, r.Workload.Config.Seed, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(out, "  spans sent             %d spans (%d requests) in %.0f s, %.0f spans/s\n", st.Spans, st.Requests, r.SpansSend.Seconds, r.SpansSend.SpansPerSecond)
	fmt.Fprintf(out, "  profiles sent          %d profiles, %.1f MB of pprof, in %.0f s (%d retries)\n",
		r.ProfilesSend.Profiles, float64(r.ProfilesSend.Bytes)/1e6, r.ProfilesSend.Seconds, r.ProfilesSend.Retries)
	s := r.Sent
	for _, svc := range r.Services {
		fmt.Fprintf(out, "  %-22s %d requests, %d spans; %d samples (%d without a span) in %d pprof rows\n",
			svc, s.Requests[svc], s.Spans[svc], s.Samples[svc], s.Background[svc], s.Rows[svc])
	}
	fmt.Fprintf(out, "  span filter            %s: %d spans, %d samples\n", r.Filter, s.SelectedSpans, s.SelectedSamples)
	fmt.Fprintf(out, "  ingest                 server CPU %.0f s, RSS peak %.0f MiB; driver CPU %.0f s\n", r.ServerCPUSeconds, r.IngestPeakRSSMiB, r.GenerateCPUSeconds)
	fmt.Fprintf(out, "  written out            flush %.1f s; %s; %.1f MB on disk\n", r.FlushSeconds, r.Settled, float64(r.Disk.AllBytes)/1e6)
	for _, q := range r.Queries {
		fmt.Fprintf(out, "  %-36s %s\n", q.Name, q.summary())
	}
	if r.QueryPeakRSSMiB > 0 {
		fmt.Fprintf(out, "  RSS peak in queries    %.0f MiB (VmHWM %.0f MiB); cores busy in queries: server %.2f, machine %.2f\n",
			r.QueryPeakRSSMiB, r.HWMMiB, r.QueryServerCores, r.QueryMachineCores)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(out, "  FAILED: %s\n", f)
	}
}
