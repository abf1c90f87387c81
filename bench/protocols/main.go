// Command protocols measures Hearth's ingest throughput per way in, on the
// same profiles: the 20 Go CPU profiles of bench/corpus, sent as
// Pyroscope's POST /ingest, Pyroscope's push.v1.PusherService/Push
// (Connect), OTLP over HTTP (gzipped and not) and OTLP over gRPC (on the
// main port and on a port of its own).
//
//	go build -o /tmp/hearth ./cmd/hearth && go run ./bench/protocols -hearth /tmp/hearth
//
// For each protocol in turn it starts a fresh hearth server (its own data
// directory, self-profiling off, a free loopback port), sends -n profiles
// with -workers concurrent clients, one profile per request, and reads
// throughput, latency, the server's CPU per profile (utime+stime from
// /proc) and its peak RSS (VmHWM); then it asks the server what it stored
// and checks it against what was sent. Profile i is corpus profile i%20 of
// service svc-(i%50), re-stamped to its own 10 s window; the windows are
// consecutive and end now. Every request is encoded before the clock
// starts, so the client's encoding is not measured. It prints a markdown
// table, one row per protocol.
package main

import (
	"debug/buildinfo"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// config is the driver's flags.
type config struct {
	hearth       string
	corpusDir    string
	n            int
	workers      int
	services     int
	protocols    []string
	keep         bool
	readyTimeout time.Duration
}

func main() {
	var cfg config
	var names string
	var all []string
	for _, p := range protocols {
		all = append(all, p.name)
	}
	flag.StringVar(&cfg.hearth, "hearth", "", "path of the hearth binary (go build -o /tmp/hearth ./cmd/hearth); required")
	flag.StringVar(&cfg.corpusDir, "corpus", filepath.Join("bench", "corpus"), "directory of the cpu-NN.pb.gz profiles")
	flag.IntVar(&cfg.n, "n", 4000, "profiles sent per protocol, one per request")
	flag.IntVar(&cfg.workers, "workers", 4, "concurrent clients, each waiting for its answer before sending again")
	flag.IntVar(&cfg.services, "services", 50, "services svc-0..svc-K the profiles are spread over")
	flag.StringVar(&names, "protocols", strings.Join(all, ","), "protocols to measure, in this order")
	flag.BoolVar(&cfg.keep, "keep", false, "keep each server's data directory and log")
	flag.DurationVar(&cfg.readyTimeout, "ready-timeout", time.Minute, "longest wait for a starting server to answer /ready")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench/protocols -hearth /tmp/hearth [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if cfg.hearth == "" || flag.NArg() > 0 || cfg.n < 1 || cfg.workers < 1 || cfg.services < 1 {
		flag.Usage()
		os.Exit(2)
	}
	for name := range strings.SplitSeq(names, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(all, name) {
			log.Fatalf("-protocols: unknown %q; known: %s", name, strings.Join(all, ", "))
		}
		cfg.protocols = append(cfg.protocols, name)
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("protocols: ")
	if err := run(cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(cfg config, out io.Writer) error {
	corpus, err := loadCorpus(cfg.corpusDir)
	if err != nil {
		return err
	}
	const window = 10
	w := workload{corpus: corpus, n: cfg.n, services: cfg.services, window: window, end: time.Now().Unix() / window * window}
	var selected []protocol
	var nd need
	for _, name := range cfg.protocols {
		p := protocols[slices.IndexFunc(protocols, func(p protocol) bool { return p.name == name })]
		selected = append(selected, p)
		nd = nd.or(p.needs)
	}
	log.Printf("encoding %d profiles", w.n)
	t0 := time.Now()
	b, err := encode(w, nd)
	if err != nil {
		return err
	}
	prepare := time.Since(t0)

	work, err := os.MkdirTemp("", "hearth-protocols-")
	if err != nil {
		return err
	}
	if cfg.keep {
		log.Printf("data directories and logs in %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	var rows []row
	var failed []string
	for _, p := range selected {
		r, err := measure(cfg, p, w, b, filepath.Join(work, p.name))
		if err != nil {
			// The other protocols still say something.
			log.Printf("%s: %v", p.name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", p.name, err))
			continue
		}
		log.Printf("%s: %.0f profiles/s, %.2f ms server CPU per profile (driver %.1f s), p99 %v; stored: %s",
			p.name, r.profilesPerSecond(), r.cpuMsPerProfile(), r.DriverCPUSeconds, r.P99.Round(time.Microsecond), r.Stored)
		if r.Errors > 0 {
			failed = append(failed, fmt.Sprintf("%s: %d requests failed; first: %s", p.name, r.Errors, r.FirstError))
		}
		if !r.Stored.ok() {
			failed = append(failed, fmt.Sprintf("%s: stored %s", p.name, r.Stored))
		}
		if r.StopError != "" {
			failed = append(failed, fmt.Sprintf("%s: shutdown: %s", p.name, r.StopError))
		}
		rows = append(rows, r)
	}
	printReport(out, cfg, w, prepare, selected, rows)
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "\n"))
	}
	return nil
}

// measure runs one protocol against a fresh server whose data and log are
// under dir.
func measure(cfg config, p protocol, w workload, b *bodies, dir string) (row, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return row{}, err
	}
	addr, err := hearthproc.FreeAddr()
	if err != nil {
		return row{}, err
	}
	sc := hearthproc.Config{Binary: cfg.hearth, Addr: addr, DataDir: filepath.Join(dir, "data"),
		LogPath: filepath.Join(dir, "server.log"), ReadyTimeout: cfg.readyTimeout}
	t := target{base: "http://" + addr}
	if p.grpcPort {
		if sc.OTLPGRPCAddr, err = hearthproc.FreeAddr(); err != nil {
			return row{}, err
		}
		t.grpcBase = "http://" + sc.OTLPGRPCAddr
	}
	// Requests are built before the server starts: nothing but sending
	// and reading answers happens on the clock.
	reqs, err := requests(p, t, w, b)
	if err != nil {
		return row{}, err
	}
	srv, ready, err := hearthproc.Start(sc)
	if err != nil {
		return row{}, err
	}
	defer func() {
		if srv != nil {
			srv.Kill()
		}
	}()
	log.Printf("%s: server ready in %v; sending %d profiles with %d clients", p.name, ready.Round(time.Millisecond), w.n, cfg.workers)
	r, err := send(p, reqs, cfg.workers, srv.PID())
	if err != nil {
		return r, err
	}
	r.StartSeconds = ready.Seconds()
	r.Stored = verify(t.base, w)
	_, err = srv.Stop(time.Minute)
	srv = nil
	if err != nil {
		// The figures stand; a server that did not shut down cleanly
		// still fails the run.
		r.StopError = err.Error()
	}
	return r, nil
}

// printReport writes what was run and the table.
func printReport(out io.Writer, cfg config, w workload, prepare time.Duration, ps []protocol, rows []row) {
	var corpusBytes int
	for _, c := range w.corpus {
		corpusBytes += len(c.data)
	}
	fmt.Fprintf(out, "\ncommand: %s\n", commandLine())
	fmt.Fprintf(out, "hearth: %s%s\n", cfg.hearth, binaryStamp(cfg.hearth))
	fmt.Fprintf(out, "machine: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(out, "workload: %d profiles per protocol (corpus %s: %d CPU profiles, %d bytes), %d services, %d clients, "+
		"windows of %d s ending %s; bodies encoded in %.1f s before the clock\n\n",
		w.n, cfg.corpusDir, len(w.corpus), corpusBytes, min(w.n, w.services), cfg.workers, w.window,
		time.Unix(w.end, 0).UTC().Format(time.RFC3339), prepare.Seconds())

	fmt.Fprintln(out, "| protocol | profiles/s | pprof MB/s | request KB | server CPU per profile | p50 | p99 | peak RSS | cores busy: server / machine | stored |")
	fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range rows {
		st := fmt.Sprintf("%d of %d", r.Stored.Points, r.Stored.WantPoints)
		if r.Stored.ok() {
			st += ", checked"
		} else {
			st += ", MISMATCH"
		}
		if r.Errors > 0 {
			st += fmt.Sprintf("; %d errors", r.Errors)
		}
		fmt.Fprintf(out, "| %s | %.0f | %.2f | %.1f | %.2f ms | %.1f ms | %.1f ms | %.0f MiB | %.2f / %.2f | %s |\n",
			r.Protocol, r.profilesPerSecond(), r.pprofMBPerSecond(), float64(r.BodyBytes)/1e3/float64(r.Profiles),
			r.cpuMsPerProfile(), hearthproc.Ms(r.P50), hearthproc.Ms(r.P99), r.PeakRSSMiB,
			r.ServerCPUSeconds/r.WallSeconds, r.MachineCPUSeconds/r.WallSeconds, st)
	}
	fmt.Fprintln(out)
	for _, p := range ps {
		fmt.Fprintf(out, "- **%s**: %s.\n", p.name, p.about)
	}
	fmt.Fprintf(out, "\nserver CPU per profile: the server's utime+stime over the sending, divided by the profiles. "+
		"peak RSS: the server's VmHWM after the sending. stored: profiles found by the server (points of cpu{} at a %d s step), "+
		"checked when their count and CPU total, the number of services and the flame graph total of %s all match what was sent.\n",
		w.window, w.service(0))
}

// binaryStamp is the VCS stamp go build put into the binary, if any.
func binaryStamp(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return fmt.Sprintf(" (%s, no VCS stamp)", info.GoVersion)
	}
	return fmt.Sprintf(" (%s, built from %.12s, modified %s)", info.GoVersion, rev, modified)
}

// commandLine is how to run this again.
func commandLine() string {
	var b strings.Builder
	b.WriteString("go run ./bench/protocols")
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
