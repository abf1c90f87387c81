// Command run is Hearth's end-to-end benchmark: it starts a hearth server,
// ingests a realistic corpus through POST /ingest, and measures ingest
// throughput and CPU, memory, disk per stored sample, restart time, and
// cold and warm queries. See bench/README.md for what each figure means.
//
//	go build -o /tmp/hearth ./cmd/hearth && go run ./bench/run -hearth /tmp/hearth
//	go run ./bench/run -hearth /tmp/hearth -quick    # smoke test, under a minute
//
// The workload: 50 services (svc0..svc49), each sending every 10 s window
// one CPU and one heap profile of the corpus (bench/corpus), re-stamped to
// the window, for -ticks windows ending now (360: one hour); and one
// service, svc-long, sending a CPU profile every 10 s for -long-ticks
// windows ending now (8,640: one day). Bodies are prepared before the
// clock starts. It prints a table and writes every figure as JSON.
package main

import (
	"bytes"
	"debug/buildinfo"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// config is the driver's flags.
type config struct {
	hearth          string
	corpusDir       string
	dataDir         string
	keep            bool
	jsonPath        string
	services        int
	ticks           int
	longTicks       int
	window          time.Duration
	workers         int
	rest            time.Duration
	repeats         int
	maxNodes        int
	flushPath       string
	restartPerQuery bool
	readyTimeout    time.Duration
	quick           bool
	s3              bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.hearth, "hearth", "", "path of the hearth binary (go build -o /tmp/hearth ./cmd/hearth); required")
	flag.StringVar(&cfg.corpusDir, "corpus", "bench/corpus", "directory of cpu-NN.pb.gz and heap-NN.pb.gz")
	flag.StringVar(&cfg.dataDir, "data", "", "server data directory; must not exist (default: a new temporary directory)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the data directory and server log afterwards")
	flag.StringVar(&cfg.jsonPath, "json", filepath.Join(os.TempDir(), "hearth-bench.json"), "write every figure here as JSON")
	flag.IntVar(&cfg.services, "services", 50, "services, each sending a CPU and a heap profile per window")
	flag.IntVar(&cfg.ticks, "ticks", 360, "windows per service (360 × 10 s = 1 h)")
	flag.IntVar(&cfg.longTicks, "long-ticks", 8640, "CPU windows of the extra service svc-long (8,640 × 10 s = 24 h); 0 for none")
	flag.DurationVar(&cfg.window, "window", 10*time.Second, "length of one window, the time between a service's profiles")
	flag.IntVar(&cfg.workers, "workers", 4, "concurrent ingest clients")
	flag.DurationVar(&cfg.rest, "rest", 10*time.Second, "idle time after the ingest before RSS at rest is read")
	flag.IntVar(&cfg.repeats, "repeats", 5, "warm calls of each query after the cold one")
	flag.IntVar(&cfg.maxNodes, "max-nodes", 2048, "max_nodes of the flame graph queries")
	flag.StringVar(&cfg.flushPath, "flush-path", "/-/flush", "admin endpoint POSTed after the ingest to cut blocks; if it does not answer 2xx, the SIGTERM shutdown is the only flush")
	flag.BoolVar(&cfg.restartPerQuery, "restart-per-query", true, "restart the server before each query's cold call, so that every cold call is the first after a start")
	flag.DurationVar(&cfg.readyTimeout, "ready-timeout", 15*time.Minute, "longest wait for a starting server to answer /ready")
	flag.BoolVar(&cfg.s3, "s3", false, "keep blocks in S3: run versitygw on loopback, ingest into --target ingester, query a --target querier started on an empty data directory for each cold call, and count its bucket requests")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke test: -ticks 6 -long-ticks 360 -rest 2s -repeats 3 unless given")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench/run -hearth /tmp/hearth [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if cfg.hearth == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if cfg.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]string{"ticks": "6", "long-ticks": "360", "rest": "2s", "repeats": "3"}
		for name, v := range quick {
			if !set[name] {
				_ = flag.Set(name, v)
			}
		}
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")
	res, err := run(cfg)
	if res != nil {
		if werr := writeJSON(cfg.jsonPath, res); werr != nil {
			log.Print(werr)
		}
		printTable(os.Stdout, res)
		fmt.Printf("\nJSON: %s\n", cfg.jsonPath)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// result is everything the benchmark measured.
type result struct {
	Command        string       `json:"command"`
	Started        time.Time    `json:"started"`
	Machine        machine      `json:"machine"`
	Hearth         binary       `json:"hearth"`
	Quick          bool         `json:"quick"`
	Workload       workloadInfo `json:"workload"`
	Corpus         corpusInfo   `json:"corpus"`
	PrepareSeconds float64      `json:"prepare_bodies_s"`

	StartEmptySeconds float64       `json:"start_empty_to_ready_s"`
	Ingest            []ingestPhase `json:"ingest"`
	IngestTotal       ingestPhase   `json:"ingest_total"`

	Memory memory `json:"memory"`

	Flush          hearthproc.FlushInfo `json:"flush"`
	DiskAfterFlush *diskUsage           `json:"disk_after_flush,omitempty"`
	Disk           diskUsage            `json:"disk"` // after the SIGTERM shutdown

	ShutdownSeconds       float64                  `json:"shutdown_s"`
	RestartToReadySeconds float64                  `json:"restart_to_ready_s"`
	Queries               []hearthproc.QueryResult `json:"queries"`
	// With -s3: where the blocks went, and the querier.
	S3    *s3Result `json:"s3,omitempty"`
	Notes []string  `json:"notes,omitempty"`
}

type machine struct {
	GoVersion string `json:"go_version"`
	NumCPU    int    `json:"num_cpu"`
	OS        string `json:"os"`
}

// binary is what is known of the hearth binary: the VCS stamp of go build
// (absent with -buildvcs=false), and the state of the git tree the driver
// runs in, which built it if the README's command was used.
type binary struct {
	Path         string `json:"path"`
	TreeRevision string `json:"tree_revision,omitempty"`
	TreeModified bool   `json:"tree_modified,omitempty"`
	Revision     string `json:"vcs_revision,omitempty"`
	Modified     string `json:"vcs_modified,omitempty"`
	Time         string `json:"vcs_time,omitempty"`
}

type workloadInfo struct {
	Services      int    `json:"services"`
	Ticks         int    `json:"ticks"`
	LongTicks     int    `json:"long_ticks"`
	WindowSeconds int64  `json:"window_s"`
	Workers       int    `json:"workers"`
	End           int64  `json:"end_unix"`
	EndTime       string `json:"end"`
}

type corpusInfo struct {
	Dir         string `json:"dir"`
	Windows     int    `json:"windows"`
	Bytes       int    `json:"bytes"`
	CPUSamples  [2]int `json:"cpu_samples_min_max"`
	HeapSamples [2]int `json:"heap_samples_min_max"`
}

type memory struct {
	StartMiB          float64 `json:"rss_empty_start_MiB"`
	PeakIngestMiB     float64 `json:"rss_peak_ingest_MiB"`
	HWMAfterIngestMiB float64 `json:"vmhwm_after_ingest_MiB"`
	RestMiB           float64 `json:"rss_at_rest_MiB"`
	RestSeconds       float64 `json:"rest_s"`
	RestCPUSeconds    float64 `json:"server_cpu_s_at_rest"` // background work during the rest
	RestartMiB        float64 `json:"rss_after_restart_MiB"`
	PeakQueriesMiB    float64 `json:"rss_peak_queries_MiB"`
}

func run(cfg config) (*result, error) {
	res := &result{
		Command: commandLine(),
		Started: time.Now().UTC(),
		Machine: machine{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Hearth:  describeBinary(cfg.hearth),
		Quick:   cfg.quick,
	}
	c, err := loadCorpus(cfg.corpusDir)
	if err != nil {
		return nil, err
	}
	res.Corpus = describeCorpus(c)

	work, err := os.MkdirTemp("", "hearth-bench-")
	if err != nil {
		return nil, err
	}
	dataDir := cfg.dataDir
	if dataDir == "" {
		dataDir = filepath.Join(work, "data")
	}
	logPath := filepath.Join(work, "server.log")
	if cfg.keep {
		log.Printf("data in %s, server log %s", dataDir, logPath)
	} else {
		defer os.RemoveAll(work)
	}
	if _, err := os.Stat(dataDir); err == nil {
		return nil, fmt.Errorf("data directory %s exists; the benchmark starts from an empty one", dataDir)
	}
	addr, err := hearthproc.FreeAddr()
	if err != nil {
		return nil, err
	}

	windowSecs := int64(cfg.window / time.Second)
	if windowSecs < 1 {
		return nil, fmt.Errorf("-window %v: want at least 1s", cfg.window)
	}
	w := workload{services: cfg.services, ticks: cfg.ticks, longTicks: cfg.longTicks, window: windowSecs,
		end: time.Now().Unix() / windowSecs * windowSecs}
	res.Workload = workloadInfo{Services: w.services, Ticks: w.ticks, LongTicks: w.longTicks, WindowSeconds: w.window,
		Workers: cfg.workers, End: w.end, EndTime: time.Unix(w.end, 0).UTC().Format(time.RFC3339)}
	base := "http://" + addr
	long := planLong(c, w, base)
	svcs := planServices(c, w, base)
	log.Printf("preparing %d requests", len(long)+len(svcs))
	t0 := time.Now()
	all := append(slices.Clone(long), svcs...)
	stamps := make([]stamp, len(all))
	for i, r := range all {
		stamps[i] = r.stamp
	}
	bodies, err := encodeBodies(stamps)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		r.body = bodies[r.stamp]
	}
	res.PrepareSeconds = time.Since(t0).Seconds()

	// Ingest, into an empty server.
	srvCfg := hearthproc.Config{Binary: cfg.hearth, Addr: addr, DataDir: dataDir, LogPath: logPath, ReadyTimeout: cfg.readyTimeout}
	// queryCfg starts the server of each query's cold call.
	queryCfg := func() hearthproc.Config { return srvCfg }
	var s3 *s3Server
	if cfg.s3 {
		s3, err = startS3(work, filepath.Join(work, "versitygw.log"))
		if err != nil {
			return res, err
		}
		defer s3.Stop()
		res.S3 = &s3Result{Endpoint: s3.Endpoint, Bucket: s3.Bucket}
		srvCfg.Args = s3.ingesterArgs()
		starts := 0
		queryCfg = func() hearthproc.Config {
			starts++
			c := srvCfg
			c.DataDir = filepath.Join(work, fmt.Sprintf("querier-%d", starts))
			c.Args = s3.querierArgs()
			return c
		}
	}
	srv, ready, err := hearthproc.Start(srvCfg)
	if err != nil {
		return res, err
	}
	defer func() {
		if srv != nil {
			srv.Kill()
		}
	}()
	res.StartEmptySeconds = ready.Seconds()
	if ps, err := hearthproc.ReadStat(srv.PID()); err == nil {
		res.Memory.StartMiB = ps.RSSMiB
	}
	rss := hearthproc.SampleRSS(srv.PID(), 100*time.Millisecond)
	if len(long) > 0 {
		log.Printf("ingest: svc-long, %d CPU profiles", len(long))
		ph, err := send("svc-long", long, cfg.workers, srv.PID(), rss)
		if err != nil {
			return res, err
		}
		res.Ingest = append(res.Ingest, ph)
	}
	log.Printf("ingest: %d services × %d windows, %d profiles", w.services, w.ticks, len(svcs))
	ph, err := send(fmt.Sprintf("%d services", w.services), svcs, cfg.workers, srv.PID(), rss)
	if err != nil {
		return res, err
	}
	res.Ingest = append(res.Ingest, ph)
	res.IngestTotal = sum("total", res.Ingest)
	res.Memory.PeakIngestMiB = res.IngestTotal.ServerRSSPeakMiB
	rss.Close()
	afterIngest, err := hearthproc.ReadStat(srv.PID())
	if err != nil {
		return res, err
	}
	res.Memory.HWMAfterIngestMiB = afterIngest.HWMMiB
	log.Printf("resting %v", cfg.rest)
	time.Sleep(cfg.rest)
	if ps, err := hearthproc.ReadStat(srv.PID()); err == nil {
		res.Memory.RestMiB = ps.RSSMiB
		res.Memory.RestSeconds = cfg.rest.Seconds()
		res.Memory.RestCPUSeconds = ps.CPUSeconds - afterIngest.CPUSeconds
	}

	// Flush, then disk.
	res.Flush = hearthproc.Flush(addr, cfg.flushPath)
	if res.Flush.Method == "endpoint" {
		disk, err := hearthproc.MeasureDisk(dataDir)
		if err != nil {
			return res, err
		}
		d := diskUsage{Disk: disk}
		d.per(res.IngestTotal)
		res.DiskAfterFlush = &d
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("POST %s answered %d: no flush endpoint; blocks are whatever the server wrote in the background and on SIGTERM", cfg.flushPath, res.Flush.Status))
	}
	log.Printf("stopping the server (SIGTERM)")
	shutdown, err := srv.Stop(5 * time.Minute)
	srv = nil
	if err != nil {
		return res, err
	}
	res.ShutdownSeconds = shutdown.Seconds()
	disk, err := hearthproc.MeasureDisk(dataDir)
	if err != nil {
		return res, err
	}
	res.Disk = diskUsage{Disk: disk}
	res.Disk.per(res.IngestTotal)
	if s3 != nil {
		if res.S3.BucketBytes, err = s3.bucketBytes(); err != nil {
			return res, err
		}
		if res.IngestTotal.Requests > 0 {
			res.S3.BucketBytesPerProfile = float64(res.S3.BucketBytes) / float64(res.IngestTotal.Requests)
		}
	}
	if res.Disk.Blocks == 0 && s3 == nil {
		res.Notes = append(res.Notes, "no blocks on disk after shutdown: the data is only in the write-ahead log, so disk figures are the log's and the restart replays it")
	}

	// Queries, each cold call the first after a start.
	cases := queryCases(w, long, svcs, cfg.maxNodes)
	var qpeak float64
	for i, qc := range cases {
		qc.CountBucket = s3 != nil
		var ready time.Duration
		if srv == nil {
			srv, ready, err = hearthproc.Start(queryCfg())
			if err != nil {
				return res, err
			}
			log.Printf("server ready in %v", ready.Round(time.Millisecond))
			if i == 0 {
				res.RestartToReadySeconds = ready.Seconds()
				if ps, err := hearthproc.ReadStat(srv.PID()); err == nil {
					res.Memory.RestartMiB = ps.RSSMiB
				}
			}
			rss = hearthproc.SampleRSS(srv.PID(), 100*time.Millisecond)
		}
		q := hearthproc.RunQuery(addr, srv.PID(), qc, cfg.repeats)
		q.StartToReadySeconds = ready.Seconds()
		res.Queries = append(res.Queries, q)
		log.Printf("query %s: cold %.1f ms, warm %.1f ms", qc.Name, q.ColdMs, q.WarmMedianMs)
		if cfg.restartPerQuery || i == len(cases)-1 {
			qpeak = max(qpeak, rss.Close())
			if _, err := srv.Stop(5 * time.Minute); err != nil {
				srv = nil
				return res, err
			}
			srv = nil
		}
	}
	res.Memory.PeakQueriesMiB = qpeak
	for _, q := range res.Queries {
		if q.Error != "" {
			return res, fmt.Errorf("query %q: %s", q.Name, q.Error)
		}
	}
	if res.IngestTotal.Errors > 0 {
		return res, fmt.Errorf("%d ingest requests failed; first: %s", res.IngestTotal.Errors, res.IngestTotal.FirstError)
	}
	return res, nil
}

// diskUsage is the bytes under the data directory, and per stored figure
// (see bench/README.md).
type diskUsage struct {
	hearthproc.Disk
	BlocksBytesPerRow      float64 `json:"blocks_bytes_per_sample_row"`
	AllBytesPerRow         float64 `json:"all_bytes_per_sample_row"`
	BlocksBytesPerStackRow float64 `json:"blocks_bytes_per_stack_row"`
	AllBytesPerStackRow    float64 `json:"all_bytes_per_stack_row"`
	AllBytesPerProfile     float64 `json:"all_bytes_per_profile"`
}

// per divides the bytes by what was stored.
func (d *diskUsage) per(t ingestPhase) {
	if t.SampleRows > 0 {
		d.BlocksBytesPerRow = float64(d.BlocksBytes) / float64(t.SampleRows)
		d.AllBytesPerRow = float64(d.AllBytes) / float64(t.SampleRows)
	}
	if t.StackRows > 0 {
		d.BlocksBytesPerStackRow = float64(d.BlocksBytes) / float64(t.StackRows)
		d.AllBytesPerStackRow = float64(d.AllBytes) / float64(t.StackRows)
	}
	if t.Requests > 0 {
		d.AllBytesPerProfile = float64(d.AllBytes) / float64(t.Requests)
	}
}

func describeCorpus(c *corpus) corpusInfo {
	ci := corpusInfo{Dir: c.dir, Windows: len(c.cpu), CPUSamples: [2]int{1 << 30, 0}, HeapSamples: [2]int{1 << 30, 0}}
	for _, f := range c.cpu {
		ci.Bytes += f.gzBytes
		ci.CPUSamples = [2]int{min(ci.CPUSamples[0], f.samples), max(ci.CPUSamples[1], f.samples)}
	}
	for _, f := range c.heap {
		ci.Bytes += f.gzBytes
		ci.HeapSamples = [2]int{min(ci.HeapSamples[0], f.samples), max(ci.HeapSamples[1], f.samples)}
	}
	return ci
}

// describeBinary reads the VCS stamp go build put into the binary.
func describeBinary(path string) binary {
	b := binary{Path: path}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		b.TreeRevision = strings.TrimSpace(string(out))
		// Changes outside bench/ are what could make the binary differ.
		st, _ := exec.Command("git", "status", "--porcelain", "--", ".", ":!bench").Output()
		b.TreeModified = len(bytes.TrimSpace(st)) > 0
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return b
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value
		case "vcs.time":
			b.Time = s.Value
		}
	}
	return b
}

// commandLine is how to run this again.
func commandLine() string {
	var b strings.Builder
	b.WriteString("go run ./bench/run")
	for _, a := range os.Args[1:] {
		b.WriteByte(' ')
		if strings.ContainsAny(a, " \t\"'$\\{}*?") {
			fmt.Fprintf(&b, "'%s'", strings.ReplaceAll(a, "'", `'\''`))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}
