// Command events measures a server that takes spans, Hearth or Grafana
// Tempo, on the span workload of bench/spans: it starts the server on
// loopback with an empty data directory, sends the workload over OTLP gRPC
// with several clients, and reads the server's CPU per span ingested
// (utime+stime from /proc), its RSS, the bytes on disk per span once the
// data is written out and compacted, and the latency of queries over the
// data (first call after a restart, then warm calls).
//
//	go build -o /tmp/hearth ./cmd/hearth
//	go run ./bench/spangen write -out /tmp/spans-1m -spans 1000000 -window 24h
//	go run ./bench/events -peer hearth -bin /tmp/hearth -workload /tmp/spans-1m
//	go run ./bench/events -peer tempo -bin /tmp/tempo -workload /tmp/spans-1m
//
// The workload directory holds the encoded requests, so both peers get
// the same bytes; when it has none, the harness writes it first. What a
// peer does not serve yet (a method or an endpoint missing) is reported as
// not measured, and the rest is measured.
package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
	"github.com/hearth-profiler/hearth/bench/spans"
)

// peer is a server under measure.
type peer interface {
	name() string
	start() (time.Duration, error)
	stop() error
	kill()
	pid() int
	otlpAddr() string
	dataDir() string
	// writeOut waits until what was sent is written out as it stays.
	writeOut(sent spans.Stats, stable, maxWait time.Duration) (writeOut, error)
	disk() (diskFigures, error)
	queries(r queryRange, sample spans.TraceSample) []query
	header() http.Header
}

// The queries both peers answer, by name.
const (
	queryGroupBy = "p99 by route"
	queryCountBy = "count by route"
	queryTrace   = "trace by ID"
	querySearch  = "search"
	queryCompare = "compare"
)

// searchFilter selects the slow minority's slow requests in TraceQL.
const searchFilter = `{ resource.cloud.region = "eu-west-3" && duration > 500ms }`

type queryRange struct{ from, until int64 } // Unix seconds

type writeOut struct {
	Waited       string  `json:"waited_for"`
	FlushSeconds float64 `json:"flush_s,omitempty"`
	AllInBlocksS float64 `json:"all_in_blocks_after_s,omitempty"`
	Seconds      float64 `json:"seconds"`
	// ServerCPUSeconds is the server's utime+stime when everything sent
	// was first in blocks (Hearth: the flush answered; Tempo: the blocks
	// hold every trace).
	ServerCPUSeconds float64 `json:"server_cpu_s_when_in_blocks"`
	TimedOut         bool    `json:"timed_out,omitempty"`
	Blocks           int     `json:"blocks"`
	Objects          int64   `json:"traces_in_blocks,omitempty"`
	State            string  `json:"state"`
	// FirstState is the blocks when they were first measured: before
	// compaction, or while it ran.
	FirstState string `json:"first_state"`
}

type diskFigures struct {
	BlocksBytes  int64   `json:"blocks_bytes"`
	WALBytes     int64   `json:"wal_bytes"`
	AllBytes     int64   `json:"all_bytes"`
	BytesPerSpan float64 `json:"blocks_bytes_per_span"`
	Note         string  `json:"note"`
}

type query struct {
	Name, About, URL string
}

type queryResult struct {
	Name                  string    `json:"name"`
	About                 string    `json:"about"`
	Request               string    `json:"request"`
	Status                string    `json:"status"` // measured, or why not
	ColdMs                float64   `json:"cold_ms,omitempty"`
	WarmMs                []float64 `json:"warm_ms,omitempty"`
	WarmMedianMs          float64   `json:"warm_median_ms,omitempty"`
	ColdServerCPUMs       float64   `json:"cold_server_cpu_ms,omitempty"`
	WarmServerCPUMsMedian float64   `json:"warm_server_cpu_ms_median,omitempty"`
	ResponseBytes         int       `json:"response_bytes,omitempty"`
	Check                 string    `json:"check,omitempty"`
}

type ingestFigures struct {
	Status           string           `json:"status"`
	Send             spans.SendResult `json:"send"`
	ServerCPUSeconds float64          `json:"server_cpu_s"`
	CPUPerSpanUs     float64          `json:"server_cpu_us_per_span"`
	// CPUPerSpanInBlocksUs counts the server's CPU from the start of the
	// ingest until everything was in blocks.
	CPUPerSpanInBlocksUs float64 `json:"server_cpu_us_per_span_until_in_blocks,omitempty"`
	SpansPerCore         float64 `json:"spans_per_core_s"` // spans per second of server CPU
	ServerCores          float64 `json:"server_cores_busy"`
	MachineCores         float64 `json:"machine_cores_busy"`
	DriverCores          float64 `json:"driver_cores_busy"`
	PeakRSSMiB           float64 `json:"peak_rss_MiB"`
}

type result struct {
	Peer       string `json:"peer"`
	Binary     string `json:"binary"`
	Command    string `json:"command"`
	Started    string `json:"started"`
	Machine    string `json:"machine"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
	Clients    int    `json:"clients"`
	Workload   struct {
		Dir      string       `json:"dir"`
		Config   spans.Config `json:"config"`
		Stats    spans.Stats  `json:"stats"`
		Services int          `json:"services"`
		Routes   int          `json:"routes"`
	} `json:"workload"`
	StartEmptySeconds float64       `json:"start_empty_s"`
	Ingest            ingestFigures `json:"ingest"`
	RSSAfterIngestMiB float64       `json:"rss_after_ingest_MiB"`
	WriteOut          *writeOut     `json:"write_out,omitempty"`
	Disk              *diskFigures  `json:"disk,omitempty"`
	RestartSeconds    float64       `json:"restart_to_ready_s,omitempty"`
	Queries           []queryResult `json:"queries"`
	QueryPeakRSSMiB   float64       `json:"query_peak_rss_MiB,omitempty"`
	// QueryMachineCores is every process's CPU per wall second over the
	// queries: above the server's own, others were busy.
	QueryMachineCores float64  `json:"query_machine_cores_busy,omitempty"`
	QueryServerCores  float64  `json:"query_server_cores_busy,omitempty"`
	HWMMiB            float64  `json:"vmhwm_MiB,omitempty"`
	NotMeasured       []string `json:"not_measured,omitempty"`
}

type config struct {
	peer, bin, workload, tenant, jsonPath string
	serverArgs                            []string
	spans                                 int64
	batch, clients, repeats, workers      int
	window                                time.Duration
	seed                                  int64
	gzip, keep, restart                   bool
	stable, settleMax                     time.Duration
}

func main() {
	var cfg config
	var serverArgs string
	flag.StringVar(&cfg.peer, "peer", "", "hearth or tempo (required)")
	flag.StringVar(&cfg.bin, "bin", "", "path of the peer's binary (required): go build -o /tmp/hearth ./cmd/hearth, or Tempo's, built as bench/README.md says")
	flag.StringVar(&cfg.workload, "workload", "", "workload directory written by `go run ./bench/spangen write`; written here first when it has no manifest.json (default: a temporary one)")
	flag.Int64Var(&cfg.spans, "spans", 1_000_000, "spans of the workload, when it is written here")
	flag.IntVar(&cfg.batch, "batch", 1000, "spans per export request, when the workload is written here")
	flag.DurationVar(&cfg.window, "window", 24*time.Hour, "the workload's requests start over this window ending now, when it is written here")
	flag.Int64Var(&cfg.seed, "seed", 1, "the workload's seed, when it is written here")
	flag.IntVar(&cfg.workers, "workers", runtime.NumCPU(), "goroutines encoding the workload, when it is written here")
	flag.IntVar(&cfg.clients, "clients", 4, "concurrent OTLP gRPC clients, each its own connection")
	flag.StringVar(&cfg.tenant, "tenant", "bench", "X-Scope-OrgID of every request")
	flag.BoolVar(&cfg.gzip, "gzip", false, "compress the export requests")
	flag.DurationVar(&cfg.stable, "stable", 75*time.Second, "after the ingest, wait until the blocks have not changed for this long (compaction done)")
	flag.DurationVar(&cfg.settleMax, "settle-max", 5*time.Minute, "longest wait for the data to be written out and compacted")
	flag.BoolVar(&cfg.restart, "restart", true, "restart the server before the queries, so that their first call is cold")
	flag.IntVar(&cfg.repeats, "repeats", 5, "warm calls of each query after the first")
	flag.StringVar(&serverArgs, "server-args", "", "more flags of hearth server, separated by spaces")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the server's data directory, log and configuration")
	flag.StringVar(&cfg.jsonPath, "json", "", "write every figure here as JSON (default /tmp/events-PEER.json)")
	flag.Parse()
	if (cfg.peer != "hearth" && cfg.peer != "tempo") || cfg.bin == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/events -peer hearth|tempo -bin PATH [-workload DIR] [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if _, err := os.Stat(cfg.bin); err != nil {
		fmt.Fprintf(os.Stderr, "events: -bin %s: %v\n", cfg.bin, err)
		os.Exit(2)
	}
	cfg.serverArgs = strings.Fields(serverArgs)
	if cfg.jsonPath == "" {
		cfg.jsonPath = "/tmp/events-" + cfg.peer + ".json"
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("events: ")
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
	}
	if err != nil {
		log.Fatal(err)
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// openWorkload opens cfg.workload, writing it first when it has no
// manifest.
func openWorkload(ctx context.Context, cfg config, work string) (*spans.Dir, error) {
	dir := cfg.workload
	if dir == "" {
		dir = filepath.Join(work, "workload")
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		wcfg := spans.DefaultConfig(cfg.spans, time.Now().Truncate(time.Second), cfg.window)
		wcfg.Seed, wcfg.BatchSpans = cfg.seed, cfg.batch
		w, err := spans.New(wcfg)
		if err != nil {
			return nil, err
		}
		log.Printf("writing the workload to %s: %d batches of %d spans over %v", dir, w.Batches(), cfg.batch, cfg.window)
		if _, err := spans.WriteDir(ctx, dir, w, cfg.workers); err != nil {
			return nil, err
		}
	} else {
		log.Printf("workload from %s (its own size, seed and window)", dir)
	}
	return spans.OpenDir(dir)
}

func run(ctx context.Context, cfg config) (*result, error) {
	work, err := os.MkdirTemp("", "hearth-events-"+cfg.peer+"-")
	if err != nil {
		return nil, err
	}
	if cfg.keep {
		log.Printf("data, log and configuration in %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	d, err := openWorkload(ctx, cfg, work)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	m := d.Manifest
	res := &result{Peer: cfg.peer, Binary: cfg.bin, Command: strings.Join(os.Args, " "), Started: time.Now().UTC().Format(time.RFC3339),
		Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()), LoadBefore: loadavg()}
	res.Workload.Dir, res.Workload.Config, res.Workload.Stats = cfg.workload, m.Config, m.Stats
	res.Clients = cfg.clients
	res.Workload.Services, res.Workload.Routes = m.Services, m.Routes
	w, err := spans.New(m.Config)
	if err != nil {
		return res, fmt.Errorf("workload's configuration: %w", err)
	}
	// The trace looked up by ID, from the middle of the range; its span
	// IDs are made again to check the answers.
	sample := m.Samples[len(m.Samples)/2]
	checks := checker{routes: w.RouteTemplates(), spanIDs: w.SpanIDs(sample)}
	if len(checks.spanIDs) != sample.Spans {
		return res, fmt.Errorf("trace %s of batch %d: %d spans made again, the manifest says %d: is the workload directory from this version of bench/spans?",
			sample.TraceID, sample.Batch, len(checks.spanIDs), sample.Spans)
	}

	var p peer
	switch cfg.peer {
	case "hearth":
		p, err = newHearth(cfg.bin, work, cfg.tenant, cfg.serverArgs)
	case "tempo":
		p, err = newTempo(cfg.bin, work, cfg.tenant)
	}
	if err != nil {
		return res, err
	}
	ready, err := p.start()
	if err != nil {
		return res, err
	}
	defer p.kill()
	res.StartEmptySeconds = ready.Seconds()

	// Ingest.
	log.Printf("%s ready in %.2f s; sending %d spans in %d requests with %d clients", p.name(), ready.Seconds(), m.Stats.Spans, m.Stats.Batches, cfg.clients)
	rss := hearthproc.SampleRSS(p.pid(), 100*time.Millisecond)
	before, err := hearthproc.ReadStat(p.pid())
	if err != nil {
		return res, err
	}
	mach0, self0, t0 := hearthproc.MachineBusySeconds(), hearthproc.SelfCPUSeconds(), time.Now()
	sent, sendErr := spans.Send(ctx, spans.SendConfig{Addr: p.otlpAddr(), Tenant: cfg.tenant, Clients: cfg.clients, Gzip: cfg.gzip,
		RetryFor: time.Minute, Progress: progress(m.Stats.Spans)}, d)
	fmt.Fprintln(os.Stderr)
	wall := time.Since(t0).Seconds()
	after, err := hearthproc.ReadStat(p.pid())
	if err != nil {
		return res, fmt.Errorf("%s after the ingest: %w (log: %s)", p.name(), err, p.dataDir())
	}
	ig := &res.Ingest
	ig.Send = sent
	ig.ServerCPUSeconds = after.CPUSeconds - before.CPUSeconds
	ig.PeakRSSMiB = rss.Peak()
	if wall > 0 {
		ig.ServerCores = ig.ServerCPUSeconds / wall
		ig.MachineCores = (hearthproc.MachineBusySeconds() - mach0) / wall
		ig.DriverCores = (hearthproc.SelfCPUSeconds() - self0) / wall
	}
	stored := sent.Spans - sent.Rejected
	switch {
	case errors.Is(sendErr, spans.ErrUnimplemented):
		ig.Status = "not measured (" + sendErr.Error() + ")"
		res.NotMeasured = append(res.NotMeasured, "ingest, disk and queries: "+sendErr.Error())
		rss.Close()
		return res, p.stop()
	case sendErr != nil:
		return res, fmt.Errorf("send: %w", sendErr)
	case sent.Failed > 0 || sent.Rejected > 0:
		ig.Status = fmt.Sprintf("measured; %d requests failed, %d spans refused: %s", sent.Failed, sent.Rejected, strings.Join(sent.Errors, "; "))
	default:
		ig.Status = "measured"
	}
	if stored > 0 && ig.ServerCPUSeconds > 0 {
		ig.CPUPerSpanUs = ig.ServerCPUSeconds * 1e6 / float64(stored)
		ig.SpansPerCore = float64(stored) / ig.ServerCPUSeconds
	}
	log.Printf("ingest: %.0f spans/s, %.2f µs of server CPU per span (%.0f spans/s per core), peak RSS %.0f MiB",
		sent.SpansPerSecond, ig.CPUPerSpanUs, ig.SpansPerCore, ig.PeakRSSMiB)

	// Written out and compacted.
	log.Printf("waiting for %s to write the data out and compact it (at most %v)", p.name(), cfg.settleMax)
	wo, err := p.writeOut(m.Stats, cfg.stable, cfg.settleMax)
	if err != nil {
		return res, err
	}
	res.WriteOut = &wo
	if wo.ServerCPUSeconds > 0 && stored > 0 {
		ig.CPUPerSpanInBlocksUs = (wo.ServerCPUSeconds - before.CPUSeconds) * 1e6 / float64(stored)
	}
	if st, err := hearthproc.ReadStat(p.pid()); err == nil {
		res.RSSAfterIngestMiB = st.RSSMiB
	}
	df, err := p.disk()
	if err != nil {
		return res, err
	}
	if stored > 0 {
		df.BytesPerSpan = float64(df.BlocksBytes) / float64(stored)
	}
	res.Disk = &df
	log.Printf("written out after %.0f s (%s): %.1f bytes per span in blocks", wo.Seconds, wo.State, df.BytesPerSpan)

	// Queries.
	if cfg.restart {
		rss.Close()
		if err := p.stop(); err != nil {
			log.Printf("stop before the queries: %v", err)
		}
		ready, err := p.start()
		if err != nil {
			return res, fmt.Errorf("restart before the queries: %w", err)
		}
		res.RestartSeconds = ready.Seconds()
		rss = hearthproc.SampleRSS(p.pid(), 100*time.Millisecond)
	}
	rss.Reset()
	qMach0, qt0 := hearthproc.MachineBusySeconds(), time.Now()
	qServer0, _ := hearthproc.ReadStat(p.pid())
	r := queryRange{from: m.Stats.MinStart / 1e9, until: m.Stats.MaxEnd/1e9 + 1}
	for _, q := range p.queries(r, sample) {
		qr := runQuery(p, q, cfg.repeats, checks)
		log.Printf("%-15s %s", q.Name, qr.summary())
		if qr.Status != "measured" {
			res.NotMeasured = append(res.NotMeasured, q.Name+": "+qr.Status)
		}
		res.Queries = append(res.Queries, qr)
	}
	res.QueryPeakRSSMiB = rss.Close()
	if wall := time.Since(qt0).Seconds(); wall > 0 {
		res.QueryMachineCores = (hearthproc.MachineBusySeconds() - qMach0) / wall
		if st, err := hearthproc.ReadStat(p.pid()); err == nil {
			res.QueryServerCores = (st.CPUSeconds - qServer0.CPUSeconds) / wall
		}
	}
	if st, err := hearthproc.ReadStat(p.pid()); err == nil {
		res.HWMMiB = st.HWMMiB
	}
	res.LoadAfter = loadavg()
	return res, p.stop()
}

func progress(total int64) func(int64) {
	return func(n int64) {
		fmt.Fprintf(os.Stderr, "\r%d of %d spans", n, total)
	}
}

// checker checks an answer against what was sent.
type checker struct {
	routes  []string // every http.route
	spanIDs []string // of the sample trace, hex
}

func (c checker) check(name string, body []byte) string {
	s := string(body)
	// Hearth's API answers {"status": "success", "data": ...}.
	var wrapped struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &wrapped) == nil && len(wrapped.Data) > 0 {
		body = wrapped.Data
	}
	switch name {
	case queryGroupBy, queryCountBy:
		n := 0
		for _, r := range c.routes {
			if strings.Contains(s, `"`+r+`"`) {
				n++
			}
		}
		return fmt.Sprintf("%d of %d routes in the answer", n, len(c.routes))
	case queryTrace:
		n := 0
		for _, id := range c.spanIDs {
			raw, _ := hex.DecodeString(id)
			if strings.Contains(s, id) || strings.Contains(s, base64.StdEncoding.EncodeToString(raw)) {
				n++
			}
		}
		return fmt.Sprintf("%d of the trace's %d spans in the answer", n, len(c.spanIDs))
	case querySearch:
		var ans struct {
			Traces []json.RawMessage `json:"traces"` // Tempo
			Events []json.RawMessage `json:"events"` // Hearth
		}
		if json.Unmarshal(body, &ans) == nil {
			switch {
			case ans.Traces != nil:
				return fmt.Sprintf("%d traces in the answer", len(ans.Traces))
			case ans.Events != nil:
				return fmt.Sprintf("%d events in the answer", len(ans.Events))
			}
		}
	case queryCompare:
		var ans struct {
			Attributes []struct {
				Attribute string `json:"attribute"`
			} `json:"attributes"`
		}
		if json.Unmarshal(body, &ans) == nil && len(ans.Attributes) > 0 {
			var top []string
			for _, a := range ans.Attributes[:min(3, len(ans.Attributes))] {
				top = append(top, a.Attribute)
			}
			return "ranked first: " + strings.Join(top, ", ")
		}
		var series struct {
			Series []json.RawMessage `json:"series"`
		}
		if json.Unmarshal(body, &series) == nil && series.Series != nil {
			return fmt.Sprintf("%d series (attribute values of selection and baseline)", len(series.Series))
		}
	}
	return ""
}

// runQuery times the first call of q and cfg.repeats more. An answer of
// 404 or 405 means the server has no such endpoint: not measured.
func runQuery(p peer, q query, repeats int, c checker) queryResult {
	qr := queryResult{Name: q.Name, About: q.About, Request: strings.TrimPrefix(q.URL, "http://")}
	if i := strings.Index(qr.Request, "/"); i >= 0 {
		qr.Request = qr.Request[i:]
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	defer client.CloseIdleConnections()
	call := func() (wall, cpu time.Duration, body []byte, code int, err error) {
		req, err := http.NewRequest(http.MethodGet, q.URL, nil)
		if err != nil {
			return 0, 0, nil, 0, err
		}
		req.Header = p.header()
		cpu0, _ := hearthproc.ThreadCPU(p.pid())
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, nil, 0, err
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		wall = time.Since(t0)
		cpu1, _ := hearthproc.ThreadCPU(p.pid())
		return wall, cpu1 - cpu0, body, resp.StatusCode, err
	}
	wall, cpu, body, code, err := call()
	switch {
	case err != nil:
		qr.Status = "error: " + err.Error()
		return qr
	case code == http.StatusMethodNotAllowed || (code == http.StatusNotFound && strings.HasPrefix(string(body), "404 page not found")):
		// net/http's answer for a path no handler serves.
		qr.Status = fmt.Sprintf("not measured (endpoint missing: %d)", code)
		return qr
	case code != http.StatusOK:
		qr.Status = fmt.Sprintf("error: %d %.300s", code, strings.TrimSpace(string(body)))
		return qr
	}
	qr.Status = "measured"
	qr.ColdMs, qr.ColdServerCPUMs, qr.ResponseBytes = hearthproc.Ms(wall), hearthproc.Ms(cpu), len(body)
	qr.Check = c.check(q.Name, body)
	var cpus []float64
	for range repeats {
		wall, cpu, _, code, err := call()
		if err != nil || code != http.StatusOK {
			qr.Status = fmt.Sprintf("measured cold; a warm call failed: %d %v", code, err)
			break
		}
		qr.WarmMs = append(qr.WarmMs, hearthproc.Ms(wall))
		cpus = append(cpus, hearthproc.Ms(cpu))
	}
	qr.WarmMedianMs, qr.WarmServerCPUMsMedian = hearthproc.Median(qr.WarmMs), hearthproc.Median(cpus)
	return qr
}

func (qr queryResult) summary() string {
	if qr.ColdMs == 0 {
		return qr.Status
	}
	return fmt.Sprintf("%.1f ms cold, %.1f ms warm; %s", qr.ColdMs, qr.WarmMedianMs, qr.Check)
}

func printTable(out io.Writer, r *result) {
	st := r.Workload.Stats
	fmt.Fprintf(out, "%s: %d spans (%d requests) of %d services over %v, %d clients, load before %s, after %s\n",
		r.Peer, st.Spans, st.Requests, r.Workload.Services, r.Workload.Config.Window, r.Clients, r.LoadBefore, r.LoadAfter)
	ig := r.Ingest
	fmt.Fprintf(out, "  ingest                 %s\n", ig.Status)
	if ig.Send.Requests > 0 {
		fmt.Fprintf(out, "  throughput             %.0f spans/s, p50 %.1f ms, p99 %.1f ms per request of %d spans\n",
			ig.Send.SpansPerSecond, ig.Send.P50Ms, ig.Send.P99Ms, r.Workload.Config.BatchSpans)
		fmt.Fprintf(out, "  server CPU per span    %.2f µs (%.0f spans/s per core); cores busy: server %.2f, driver %.2f, machine %.2f\n",
			ig.CPUPerSpanUs, ig.SpansPerCore, ig.ServerCores, ig.DriverCores, ig.MachineCores)
		if ig.CPUPerSpanInBlocksUs > 0 {
			fmt.Fprintf(out, "  ... until in blocks    %.2f µs per span (%.0f spans/s per core)\n", ig.CPUPerSpanInBlocksUs, 1e6/ig.CPUPerSpanInBlocksUs)
		}
		fmt.Fprintf(out, "  RSS peak in ingest     %.0f MiB, %.0f MiB once written out\n", ig.PeakRSSMiB, r.RSSAfterIngestMiB)
	}
	if r.WriteOut != nil {
		fmt.Fprintf(out, "  written out            after %.0f s: %s, at first %s (%s)\n", r.WriteOut.Seconds, r.WriteOut.State, r.WriteOut.FirstState, r.WriteOut.Waited)
	}
	if r.Disk != nil {
		fmt.Fprintf(out, "  disk                   %.1f bytes per span in blocks (%d bytes), %d bytes of WAL\n", r.Disk.BytesPerSpan, r.Disk.BlocksBytes, r.Disk.WALBytes)
	}
	for _, q := range r.Queries {
		fmt.Fprintf(out, "  %-22s %s\n", q.Name, q.summary())
	}
	if r.QueryPeakRSSMiB > 0 {
		fmt.Fprintf(out, "  RSS peak in queries    %.0f MiB (VmHWM %.0f MiB); cores busy in queries: server %.2f, machine %.2f\n",
			r.QueryPeakRSSMiB, r.HWMMiB, r.QueryServerCores, r.QueryMachineCores)
	}
	for _, n := range r.NotMeasured {
		fmt.Fprintf(out, "  not measured: %s\n", n)
	}
}
