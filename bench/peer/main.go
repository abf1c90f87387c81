// Command peer measures Hearth on the workload that a peer's published
// figures were taken with, so that the two stand side by side on the same
// bytes: the peer's load generator sends its corpus to POST /ingest (5,000
// Go CPU profiles of 50 services, 4 clients), then the driver flushes the
// heads into blocks, counts the bytes on disk per sample row sent, times
// restarts the server, and times the flame graphs of one service (100
// profiles) and of all 50 (5,000), cold and warm. The load generator and its corpus are not part
// of Hearth: give the directory that holds them (loadgen/ and corpus/).
//
//	go build -o /tmp/hearth ./cmd/hearth
//	go run ./bench/peer -hearth /tmp/hearth -loadgen DIR
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// loadgenResult is what the load generator reports, in its own names.
type loadgenResult struct {
	N               int     `json:"n"`
	Services        int     `json:"services"`
	Base            int64   `json:"base"`
	LastUntil       int64   `json:"last_until"`
	IngestsPerSec   float64 `json:"ingests_per_s"`
	PayloadMBPerSec float64 `json:"payload_MB_per_s"`
	SamplesSent     int64   `json:"pprof_samples_sent"`
	CPUTicksSent    int64   `json:"cpu_ticks_sent"`
	P50Ms           float64 `json:"lat_p50_ms"`
	P99Ms           float64 `json:"lat_p99_ms"`
	Errors          int64   `json:"errors"`
	ServerCPUSecs   float64 `json:"server_cpu_s_during_ingest"`
	RSSBeforeMB     float64 `json:"server_rss_before_MB"`
	PeakRSSMB       float64 `json:"server_peak_rss_sampled_MB"`
	RSSAfterMB      float64 `json:"server_rss_after_settle_MB"`
}

// result is every figure of a run.
type result struct {
	Command      string `json:"command"`
	Workers      int    `json:"workers"`
	QueryClients int    `json:"query_clients"`
	// QueryMs are the wall times of the query clients' flame graphs that
	// came back 200 with data while the load generator ran.
	QueryMs []float64 `json:"query_ms,omitempty"`
	// QueryGrowingMs are those of QueryMs whose total had grown since the
	// client's previous answer: drawn while profiles were arriving.
	QueryGrowingMs    []float64                `json:"query_growing_ms,omitempty"`
	Loadgen           loadgenResult            `json:"loadgen"`
	StartEmptySeconds float64                  `json:"start_empty_s"`
	ServerCPUPerMs    float64                  `json:"server_cpu_ms_per_ingest"`
	Flush             hearthproc.FlushInfo     `json:"flush"`
	Disk              hearthproc.Disk          `json:"disk_after_flush"`
	BytesPerSampleRow float64                  `json:"disk_bytes_per_sample_row"`
	RestartSeconds    float64                  `json:"restart_to_ready_s"`
	Queries           []hearthproc.QueryResult `json:"queries"`
}

// period is the sampling period of the corpus's CPU profiles (100 Hz):
// a flame graph's total is the CPU samples sent times it.
const period = 10 * time.Millisecond

func main() {
	hearth := flag.String("hearth", "", "path of the hearth binary (go build -o /tmp/hearth ./cmd/hearth); required")
	loadgen := flag.String("loadgen", "", "directory holding the peer's load generator (loadgen/) and corpus (corpus/); required")
	n := flag.Int("n", 5000, "ingests, as the peer's figures")
	workers := flag.Int("workers", 4, "concurrent clients, as the peer's figures")
	repeats := flag.Int("repeats", 5, "calls of each query after the first")
	queryClients := flag.Int("query-clients", 0, "clients drawing flame graphs of everything sent so far, one after another, while the load generator sends")
	serverArgs := flag.String("server-args", "", "more flags of hearth server, separated by spaces (e.g. --query.cpu-share=1)")
	jsonPath := flag.String("json", "/tmp/hearth-peer.json", "write every figure here as JSON")
	flag.Parse()
	if *hearth == "" || *loadgen == "" {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("peer: ")
	res, err := run(*hearth, *loadgen, *n, *workers, *repeats, *queryClients, strings.Fields(*serverArgs))
	if res != nil {
		out, _ := json.MarshalIndent(res, "", "  ")
		if werr := os.WriteFile(*jsonPath, out, 0o644); werr != nil {
			log.Print(werr)
		}
		printTable(res)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func run(hearth, loadgen string, n, workers, repeats, queryClients int, serverArgs []string) (*result, error) {
	res := &result{Command: fmt.Sprint(os.Args), Workers: workers, QueryClients: queryClients}
	work, err := os.MkdirTemp("", "hearth-peer-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	addr, err := hearthproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(work, "data")
	cfg := hearthproc.Config{Binary: hearth, Addr: addr, DataDir: dataDir, LogPath: filepath.Join(work, "server.log"), ReadyTimeout: 5 * time.Minute, Args: serverArgs}
	srv, ready, err := hearthproc.Start(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if srv != nil {
			srv.Kill()
		}
	}()
	res.StartEmptySeconds = ready.Seconds()

	lgJSON := filepath.Join(work, "loadgen.json")
	log.Printf("load generator: %d ingests, %d clients, %d query clients", n, workers, queryClients)
	// The load generator's own default base, given so that the query
	// clients know the range.
	base := time.Now().Unix()/10*10 - 1200
	cmd := exec.Command("go", "run", "./loadgen", "-url", "http://"+addr, "-corpus", "corpus", "-base", strconv.FormatInt(base, 10),
		"-n", strconv.Itoa(n), "-workers", strconv.Itoa(workers), "-pid", strconv.Itoa(srv.PID()), "-json", lgJSON)
	cmd.Dir = loadgen
	cmd.Stderr = os.Stderr
	// Building the load generator takes a while; the query clients start
	// with the sending, when the first profile is stored.
	stop := make(chan struct{})
	var queried chan queryTimes
	if queryClients > 0 {
		queried = make(chan queryTimes, queryClients)
		params := url.Values{"query": {`cpu{env="bench"}`}, "from": {strconv.FormatInt(base, 10)}, "until": {strconv.FormatInt(base+3600, 10)}}
		for range queryClients {
			go func() { queried <- queryLoop(addr, params, stop) }()
		}
	}
	err = cmd.Run()
	close(stop)
	for range queryClients {
		qt := <-queried
		res.QueryMs = append(res.QueryMs, qt.all...)
		res.QueryGrowingMs = append(res.QueryGrowingMs, qt.growing...)
	}
	if err != nil {
		return res, fmt.Errorf("load generator in %s: %w", loadgen, err)
	}
	raw, err := os.ReadFile(lgJSON)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(raw, &res.Loadgen); err != nil {
		return res, fmt.Errorf("load generator's figures: %w", err)
	}
	lg := res.Loadgen
	if lg.Errors > 0 || lg.N == 0 {
		return res, fmt.Errorf("load generator: %d of %d ingests failed", lg.Errors, lg.N)
	}
	res.ServerCPUPerMs = lg.ServerCPUSecs * 1000 / float64(lg.N)

	res.Flush = hearthproc.Flush(addr, "/-/flush")
	if res.Flush.Method != "endpoint" {
		return res, fmt.Errorf("POST /-/flush answered %d", res.Flush.Status)
	}
	if res.Disk, err = hearthproc.MeasureDisk(dataDir); err != nil {
		return res, err
	}
	res.BytesPerSampleRow = float64(res.Disk.BlocksBytes) / float64(lg.SamplesSent)

	// The selections of the peer's query figures: one service's 100
	// profiles, and all 5,000.
	rng := url.Values{"from": {strconv.FormatInt(lg.Base, 10)}, "until": {strconv.FormatInt(lg.LastUntil, 10)}}
	one := cloneWith(rng, "query", `cpu{service_name="svc0"}`)
	all := cloneWith(rng, "query", `cpu{env="bench"}`)
	queries := []hearthproc.Query{
		{Name: fmt.Sprintf("flame graph, 1 service (%d profiles)", lg.N/lg.Services), Path: "/api/v1/query/flamegraph", Params: one, Profiles: lg.N / lg.Services},
		{Name: fmt.Sprintf("flame graph, %d services (%d profiles)", lg.Services, lg.N), Path: "/api/v1/query/flamegraph", Params: all, Profiles: lg.N,
			Want: lg.CPUTicksSent * int64(period)},
	}
	// A restart first, so that the first call of each query is cold: the
	// first after a start, its blocks not yet read (the OS page cache
	// stays warm).
	if _, err := srv.Stop(time.Minute); err != nil {
		srv = nil
		return res, err
	}
	if srv, ready, err = hearthproc.Start(cfg); err != nil {
		return res, err
	}
	res.RestartSeconds = ready.Seconds()
	for _, q := range queries {
		qr := hearthproc.RunQuery(addr, srv.PID(), q, repeats)
		if qr.Error != "" {
			return res, fmt.Errorf("query %s: %s", q.Name, qr.Error)
		}
		res.Queries = append(res.Queries, qr)
	}
	_, err = srv.Stop(time.Minute)
	srv = nil
	return res, err
}

// queryTimes are the wall times of a query client's flame graphs that
// answered with data, and of those whose total had grown since the
// client's previous answer, which were drawn while the load generator was
// sending (before it, the head is empty; after it, the total stays).
type queryTimes struct{ all, growing []float64 }

// queryLoop draws flame graphs one after another until stop is closed.
func queryLoop(addr string, params url.Values, stop <-chan struct{}) queryTimes {
	client := &http.Client{Timeout: time.Minute}
	u := "http://" + addr + "/api/v1/query/flamegraph?" + params.Encode()
	var out queryTimes
	var last int64
	for {
		select {
		case <-stop:
			return out
		default:
		}
		t0 := time.Now()
		resp, err := client.Get(u)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var answer struct {
			Data struct {
				Total int64 `json:"total"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		ms := float64(time.Since(t0).Microseconds()) / 1000
		if err != nil || resp.StatusCode != http.StatusOK || answer.Data.Total == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		out.all = append(out.all, ms)
		if answer.Data.Total != last {
			out.growing = append(out.growing, ms)
		}
		last = answer.Data.Total
	}
}

func cloneWith(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(key, value)
	return out
}

func printTable(r *result) {
	lg := r.Loadgen
	fmt.Printf("%d ingests of %d services, %d clients (the peer's workload)\n", lg.N, lg.Services, r.Workers)
	fmt.Printf("  server CPU per ingest   %.2f ms\n", r.ServerCPUPerMs)
	fmt.Printf("  throughput              %.0f ingests/s, %.1f MB/s\n", lg.IngestsPerSec, lg.PayloadMBPerSec)
	fmt.Printf("  latency p50 / p99       %.1f / %.1f ms\n", lg.P50Ms, lg.P99Ms)
	if r.QueryClients > 0 {
		qs := slices.Clone(r.QueryMs)
		slices.Sort(qs)
		med := 0.0
		if len(qs) > 0 {
			med = qs[len(qs)/2]
		}
		fmt.Printf("  meanwhile               %d flame graphs of everything sent so far by %d clients, median %.1f ms\n", len(qs), r.QueryClients, med)
		gs := slices.Clone(r.QueryGrowingMs)
		slices.Sort(gs)
		if len(gs) > 0 {
			fmt.Printf("    while profiles arrived %d, median %.1f ms, slowest %.1f ms\n", len(gs), gs[len(gs)/2], gs[len(gs)-1])
		}
	}
	fmt.Printf("  RSS before / peak / after %.0f / %.0f / %.0f MiB\n", lg.RSSBeforeMB, lg.PeakRSSMB, lg.RSSAfterMB)
	fmt.Printf("  disk after flush        %d bytes in blocks, %.2f bytes per sample row (%d rows sent)\n", r.Disk.BlocksBytes, r.BytesPerSampleRow, lg.SamplesSent)
	for _, q := range r.Queries {
		fmt.Printf("  %-42s %.1f ms cold, %.1f ms warm (median of %d)\n", q.Name, q.ColdMs, q.WarmMedianMs, len(q.WarmMs))
	}
	fmt.Printf("  start to ready          %.2f s empty, %.2f s with the data\n", r.StartEmptySeconds, r.RestartSeconds)
}
