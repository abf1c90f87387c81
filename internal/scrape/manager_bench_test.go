package scrape

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/scrape/scrapetest"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// discardAppender stores nothing.
type discardAppender struct{}

func (discardAppender) Ingest(context.Context, string, *ingest.Request) error { return nil }

// BenchmarkManager runs the manager against fake Go services in this
// process, every endpoint of every target once per op. With
// appender=discard it measures scraping alone; with appender=ingest the
// profiles are decoded and stored by the real ingester. The fake targets'
// side of each request is in the figures too, since they share the
// process.
func BenchmarkManager(b *testing.B) {
	cpu, err := scrapetest.LoadCPUProfiles(filepath.Join(testfiles.Root(b), "bench", "corpus", "cpu-*.pb.gz"))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		n   int
		app string
	}{{20, "discard"}, {200, "discard"}, {200, "ingest"}} {
		b.Run(fmt.Sprintf("targets=%d/appender=%s", bc.n, bc.app), func(b *testing.B) {
			n := bc.n
			var app Appender = discardAppender{}
			if bc.app == "ingest" {
				app = profiletest.OpenStore(b).Ing
			}
			fleet, err := scrapetest.Start(n, scrapetest.Options{CPUProfiles: cpu, Snapshot: true})
			if err != nil {
				b.Fatal(err)
			}
			defer fleet.Close()
			cfg, err := Load(fmt.Appendf(nil, `
scrape_configs:
  - job_name: fleet
    scrape_interval: 10s
    static_configs: [{targets: [%s]}]
`, strings.Join(fleet.Addrs(), ", ")))
			if err != nil {
				b.Fatal(err)
			}
			m := NewManager(app, nil, Options{})
			m.manual = true
			if err := m.ApplyConfig(cfg); err != nil {
				b.Fatal(err)
			}
			go m.Run(context.Background())
			defer m.Stop()
			perRound := uint64(n * len(cfg.ScrapeConfigs[0].Endpoints()))
			round := func() {
				want := m.stats.scrapes.Load() + perRound
				m.trigger()
				for m.stats.scrapes.Load() < want {
					time.Sleep(100 * time.Microsecond)
				}
			}
			round() // connections and buffers
			bytesBefore := m.stats.bytes.Load()
			b.ReportAllocs()
			b.ResetTimer()
			rounds := 0
			for b.Loop() {
				round()
				rounds++
			}
			b.StopTimer()
			if f := m.stats.failures.Load(); f > 0 {
				b.Fatalf("%d scrapes failed", f)
			}
			b.ReportMetric(float64(perRound), "scrapes/op")
			b.SetBytes(int64(m.stats.bytes.Load()-bytesBefore) / int64(max(rounds, 1)))
		})
	}
}
