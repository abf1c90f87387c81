// Package scrape pulls Go pprof endpoints (/debug/pprof/profile, heap,
// allocs, goroutine, mutex, block) from targets on an interval and stores
// the profiles through an Appender, normally the ingester.
//
// Targets and how to scrape them come from a YAML configuration in the
// shape of Prometheus' (global, scrape_configs with job_name,
// static_configs, file_sd_configs and the HTTP client fields, which are
// Prometheus' own from prometheus/common) with a Parca-like
// profiling_config that lists the endpoints:
//
//	cfg, err := scrape.LoadFile("hearth.yml")
//	if err != nil { ... }
//	m := scrape.NewManager(ingester, logger, scrape.Options{})
//	if err := m.ApplyConfig(cfg); err != nil { ... }
//	go m.Run(ctx)
//	...
//	m.ApplyConfig(newCfg) // reload
//	m.Targets()           // status, for /api/v1/targets
//
// Each endpoint of each target has its own loop, started at an offset in
// the interval drawn from a hash of the target, so that many targets do not
// fire at once and a slow target delays only itself. A failed scrape waits
// for the next interval. Every stored profile carries the series labels
// job, instance and service_name (a target's service_name label, else the
// job name) and the target's own labels. Cumulative endpoints (allocs,
// mutex, block) are sent with DropFirst: storage turns them into deltas per
// series, and a target's first scrape only sets the baseline.
//
// A Manager is safe for concurrent use. Nothing is scraped before Run, and
// nothing after Stop returns, so the storage can be closed then.
package scrape
