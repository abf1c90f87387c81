// Command scrape is the load for measuring Hearth's scraping: it serves
// many fake Go services on loopback from this one process (200 by
// default, each on its own port) and writes a Hearth configuration that
// scrapes them all, then waits until interrupted.
//
//	go run ./bench/scrape                 # prints the config path
//	hearth server --config /tmp/hearth-scrape-bench.yml
//
// A Go process can run one CPU profile at a time, so /debug/pprof/profile
// answers with the recorded CPU profiles of bench/corpus after waiting the
// seconds asked, as a real one would. heap, allocs, goroutine, mutex and
// block are this process's own runtime profiles, taken per request.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hearth-profiler/hearth/internal/scrape"
	"github.com/hearth-profiler/hearth/internal/scrape/scrapetest"
)

func main() {
	targets := flag.Int("targets", 200, "number of fake Go services to serve")
	interval := flag.Duration("interval", 10*time.Second, "scrape_interval written in the config")
	corpus := flag.String("corpus", filepath.Join("bench", "corpus", "cpu-*.pb.gz"), "recorded CPU profiles to serve")
	out := flag.String("out", filepath.Join(os.TempDir(), "hearth-scrape-bench.yml"), "where to write the Hearth config")
	snapshot := flag.Bool("snapshot", false, "serve runtime profiles taken once at start instead of fresh ones per request")
	every := flag.Duration("report", time.Minute, "how often to print the requests served (0: never)")
	flag.Parse()
	log.SetFlags(0)

	cpu, err := scrapetest.LoadCPUProfiles(*corpus)
	if err != nil {
		log.Fatalf("load CPU profiles: %v (run from the repository root, or set -corpus)", err)
	}
	// Contention profiles say nothing unless the runtime records them.
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))

	fleet, err := scrapetest.Start(*targets, scrapetest.Options{CPUProfiles: cpu, WaitSeconds: true, Snapshot: *snapshot})
	if err != nil {
		log.Fatal(err)
	}
	defer fleet.Close()

	cfg := fmt.Sprintf(`# Written by go run ./bench/scrape: %d fake Go services on loopback.
scrape_configs:
  - job_name: bench
    scrape_interval: %s
    static_configs:
      - targets: [%s]
`, *targets, scrape.Duration(*interval), strings.Join(fleet.Addrs(), ", "))
	// The config must load as Hearth will load it.
	if _, err := scrape.Load([]byte(cfg)); err != nil {
		log.Fatalf("BUG: the written config does not load: %v", err)
	}
	if err := os.WriteFile(*out, []byte(cfg), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("serving %d targets (%s .. %s)\nconfig: %s\nrun:    hearth server --config %s\n",
		*targets, fleet.Addrs()[0], fleet.Addrs()[len(fleet.Addrs())-1], *out, *out)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	start, last := time.Now(), int64(0)
	for {
		select {
		case <-ctx.Done():
			fmt.Printf("served %d requests in %s\n", fleet.Requests(), time.Since(start).Round(time.Second))
			return
		case <-tick:
			n := fleet.Requests()
			fmt.Printf("%s: %d requests (%.1f/s over the last %s)\n", time.Since(start).Round(time.Second), n, float64(n-last)/every.Seconds(), *every)
			last = n
		}
	}
}
