// Command spangen makes the span workload of bench/spans and sends it over
// OTLP gRPC, or writes it to a directory so that every server measured is
// sent the same bytes.
//
//	go run ./bench/spangen send -addr 127.0.0.1:4317 -spans 100000
//	go run ./bench/spangen write -out /tmp/spans-1m -spans 1000000 -window 24h
//	go run ./bench/spangen send -addr 127.0.0.1:4317 -in /tmp/spans-1m
//	go run ./bench/spangen show -index 0 -spans 1000 | head
//
// send reports the spans per second acknowledged, the failures and the
// latency of the export calls; -json writes them to a file.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/hearth-profiler/hearth/bench/spans"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: go run ./bench/spangen COMMAND [flags]

commands:
  send   send the workload (made as it goes, or read from -in DIR) to an OTLP gRPC server
  write  write the workload to a directory (-out DIR), for send -in and bench/events -workload
  show   print one batch as OTLP JSON

go run ./bench/spangen COMMAND -h lists a command's flags.
`)
	os.Exit(2)
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("spangen: ")
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "send":
		err = send(ctx, os.Args[2:])
	case "write":
		err = write(ctx, os.Args[2:])
	case "show":
		err = show(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Fatal(err)
	}
}

// workloadFlags are the flags that make a spans.Config.
type workloadFlags struct {
	spans      int64
	batch      int
	seed       int64
	window     time.Duration
	end        string
	slow       string
	slowFactor float64
	errorRate  float64
}

func (wf *workloadFlags) register(fs *flag.FlagSet, window time.Duration) {
	fs.Int64Var(&wf.spans, "spans", 1_000_000, "spans to make (in whole batches: ceil(spans/batch) of them)")
	fs.IntVar(&wf.batch, "batch", 1000, "spans per export request (whole requests: up to 4 more)")
	fs.Int64Var(&wf.seed, "seed", 1, "seed of the fleet and of every request")
	fs.DurationVar(&wf.window, "window", window, "spread the requests' start times over this window ending at -end; 0 stamps each batch with the clock when it is made")
	fs.StringVar(&wf.end, "end", "now", "end of the window: now, or an RFC 3339 time, or Unix seconds")
	fs.StringVar(&wf.slow, "slow", spans.DefaultSlow.String(), "slow minority SCOPE.KEY=VALUE: resource.KEY of any resource attribute, or one of "+
		strings.Join(spans.SlowSpanKeys, ", ")+"; none for no slow minority")
	fs.Float64Var(&wf.slowFactor, "slow-factor", spans.DefaultSlow.Factor, "duration multiplier of the slow minority")
	fs.Float64Var(&wf.errorRate, "errors", 0.01, "mean share of requests that fail")
}

func (wf *workloadFlags) workload() (*spans.Workload, error) {
	end, err := parseEnd(wf.end)
	if err != nil {
		return nil, err
	}
	slow, err := spans.ParseSlow(wf.slow, wf.slowFactor)
	if err != nil {
		return nil, fmt.Errorf("-slow: %w", err)
	}
	cfg := spans.Config{Seed: wf.seed, Spans: wf.spans, BatchSpans: wf.batch, End: end, Window: wf.window, Slow: slow, ErrorRate: wf.errorRate}
	return spans.New(cfg)
}

func parseEnd(s string) (time.Time, error) {
	if s == "now" {
		return time.Now().Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var sec int64
	if _, err := fmt.Sscan(s, &sec); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("-end %q: want now, an RFC 3339 time or Unix seconds", s)
}

func send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	var wf workloadFlags
	wf.register(fs, 0)
	addr := fs.String("addr", "127.0.0.1:4317", "OTLP gRPC server, host:port (cleartext)")
	in := fs.String("in", "", "send the workload written to this directory by spangen write (the workload flags are then ignored)")
	clients := fs.Int("clients", 4, "concurrent clients, each its own connection, each waiting for its answer before sending again")
	tenant := fs.String("tenant", "", "X-Scope-OrgID to send")
	gz := fs.Bool("gzip", false, "compress the requests")
	workers := fs.Int("workers", max(1, runtime.NumCPU()/2), "goroutines encoding batches, when not sending from -in")
	retryFor := fs.Duration("retry-for", 30*time.Second, "how long to retry a batch the server refuses for now (Unavailable, ResourceExhausted)")
	jsonPath := fs.String("json", "", "also write the result here as JSON")
	fs.Parse(args)

	var src spans.Source
	var total int64
	if *in != "" {
		d, err := spans.OpenDir(*in)
		if err != nil {
			return err
		}
		defer d.Close()
		src, total = d, d.Manifest.Stats.Spans
	} else {
		w, err := wf.workload()
		if err != nil {
			return err
		}
		src = w.LiveSource(ctx, *workers)
		total = int64(w.Batches()) * int64(w.Config().BatchSpans)
	}
	log.Printf("sending about %d spans to %s with %d clients", total, *addr, *clients)
	res, err := spans.Send(ctx, spans.SendConfig{Addr: *addr, Tenant: *tenant, Clients: *clients, Gzip: *gz, RetryFor: *retryFor,
		Progress: func(n int64) { fmt.Fprintf(os.Stderr, "\r%d spans", n) }}, src)
	fmt.Fprintln(os.Stderr)
	fmt.Printf("%d spans in %d requests in %.1f s: %.0f spans/s, latency p50 %.1f ms, p99 %.1f ms\n",
		res.Spans, res.Requests, res.Seconds, res.SpansPerSecond, res.P50Ms, res.P99Ms)
	if res.Failed > 0 || res.Rejected > 0 || res.Retries > 0 {
		fmt.Printf("%d requests failed (%d spans), %d spans refused, %d retries\n", res.Failed, res.FailedSpans, res.Rejected, res.Retries)
	}
	for _, e := range res.Errors {
		fmt.Println("  " + e)
	}
	if *jsonPath != "" {
		js, _ := json.MarshalIndent(res, "", "  ")
		if werr := os.WriteFile(*jsonPath, js, 0o644); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d of %d requests failed", res.Failed, res.Failed+res.Requests)
	}
	return nil
}

func write(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("write", flag.ExitOnError)
	var wf workloadFlags
	wf.register(fs, 24*time.Hour)
	out := fs.String("out", "", "directory to write (required)")
	workers := fs.Int("workers", runtime.NumCPU(), "goroutines encoding batches")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("-out DIR is required")
	}
	w, err := wf.workload()
	if err != nil {
		return err
	}
	log.Printf("writing %d batches of %d spans to %s", w.Batches(), w.Config().BatchSpans, *out)
	m, err := spans.WriteDir(ctx, *out, w, *workers)
	if err != nil {
		return err
	}
	st := m.Stats
	fmt.Printf("%s: %d spans (%d requests, %.2f%% slow, %.2f%% of spans errors) in %d batches, %.1f MB, %.0f bytes per span, made in %.1f s\n",
		*out, st.Spans, st.Requests, 100*float64(st.SlowRequests)/float64(st.Requests), 100*float64(st.ErrorSpans)/float64(st.Spans),
		st.Batches, float64(st.Bytes)/1e6, float64(st.Bytes)/float64(st.Spans), m.Seconds)
	fmt.Printf("from %s to %s; %d services, %d routes\n", time.Unix(0, st.MinStart).UTC().Format(time.RFC3339),
		time.Unix(0, st.MaxEnd).UTC().Format(time.RFC3339), m.Services, m.Routes)
	return nil
}

func show(args []string) error {
	fs := flag.NewFlagSet("show", flag.ExitOnError)
	var wf workloadFlags
	wf.register(fs, time.Hour)
	batch := fs.Int("index", 0, "batch to print, from 0")
	fs.Parse(args)
	w, err := wf.workload()
	if err != nil {
		return err
	}
	if *batch < 0 || *batch >= w.Batches() {
		return fmt.Errorf("-index %d: the workload has batches 0 to %d", *batch, w.Batches()-1)
	}
	td, _, _ := w.Traces(*batch)
	js, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		return err
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Println(string(out))
	return nil
}
