package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearth-profiler/hearth/internal/agent/bpf"
	"github.com/hearth-profiler/hearth/internal/agent/symbolize"
)

// Metric descriptions. Every value is read from Stats when the metrics are
// gathered, so that the log line and the metrics can never disagree.
var (
	descSamples = prometheus.NewDesc("hearth_agent_samples_total",
		"Samples read from the kernel sampler, including those filtered or dropped later.", nil, nil)
	descLost = prometheus.NewDesc("hearth_agent_samples_lost_total",
		"Samples the kernel sampler could not record, by reason (stack_collision, stack_error, count_map_full).", []string{"reason"}, nil)
	descFiltered = prometheus.NewDesc("hearth_agent_samples_filtered_total",
		"Samples of processes left out by the filters or of the agent itself.", nil, nil)
	descDropped = prometheus.NewDesc("hearth_agent_samples_dropped_total",
		"Samples dropped over a cap, by cap (processes, stacks).", []string{"cap"}, nil)
	descDrainErrors = prometheus.NewDesc("hearth_agent_drain_errors_total",
		"Drains of the kernel sampler that failed.", nil, nil)
	descFrames = prometheus.NewDesc("hearth_agent_frames_total",
		"Stack frames of the profiles built, each counted once per sample it holds.", nil, nil)
	descUnnamed = prometheus.NewDesc("hearth_agent_frames_unnamed_total",
		"Stack frames of the profiles built that have no function name, by reason, each counted once per sample it holds.", []string{"reason"}, nil)
	descProfiles = prometheus.NewDesc("hearth_agent_profiles_total",
		"Profiles built, one per process per interval.", nil, nil)
	descPushed = prometheus.NewDesc("hearth_agent_profiles_pushed_total",
		"Profiles the server stored.", nil, nil)
	descRejected = prometheus.NewDesc("hearth_agent_profiles_rejected_total",
		"Profiles the server refused as bad input.", nil, nil)
	descDroppedProfiles = prometheus.NewDesc("hearth_agent_profiles_dropped_total",
		"Profiles thrown away: the buffer was full, or they were unsent at shutdown.", nil, nil)
	descPushFailures = prometheus.NewDesc("hearth_agent_push_failures_total",
		"Push requests that failed and were retried.", nil, nil)
	descQueued = prometheus.NewDesc("hearth_agent_queue_profiles",
		"Profiles waiting to be pushed.", nil, nil)
	descQueuedBytes = prometheus.NewDesc("hearth_agent_queue_bytes",
		"Bytes of the profiles waiting to be pushed.", nil, nil)
	descProcesses = prometheus.NewDesc("hearth_agent_processes",
		"Processes tracked now.", nil, nil)
	descDrainInterval = prometheus.NewDesc("hearth_agent_drain_interval_seconds",
		"The wait between drains of the kernel maps now; shorter while drains lose samples.", nil, nil)

	descSymCacheBytes = prometheus.NewDesc("hearth_agent_symbol_cache_bytes",
		"Estimated bytes of the cached symbol tables.", nil, nil)
	descSymBinaries = prometheus.NewDesc("hearth_agent_symbol_cache_binaries",
		"Binaries whose symbols are cached now.", nil, nil)
	descSymLoads = prometheus.NewDesc("hearth_agent_symbol_loads_total",
		"Symbol tables read from a binary (cache misses).", nil, nil)
	descSymEvictions = prometheus.NewDesc("hearth_agent_symbol_evictions_total",
		"Binaries dropped from the symbol cache to stay within its bound.", nil, nil)
	descSymLoadErrors = prometheus.NewDesc("hearth_agent_symbol_load_errors_total",
		"Binaries with a symbol table that could not be read (a corrupt pclntab, say).", nil, nil)
	descKernelBytes = prometheus.NewDesc("hearth_agent_kernel_symbols_bytes",
		"Estimated bytes of the kernel symbol table.", nil, nil)
)

// symbolizerStats is what a Symbolizer may also tell of its caches; the
// agent's *symbolize.Symbolizer does.
type symbolizerStats interface {
	Stats() symbolize.Stats
}

// Collector returns the agent's Stats, and its symbolizer's caches when
// the symbolizer tells of them, as Prometheus metrics.
func (a *Agent) Collector() prometheus.Collector { return collector{a} }

type collector struct{ a *Agent }

// Describe names every metric, also those Collect sends only once there is
// something to count (an unnamed frame) or a source for it (symbolizer
// caches): a pedantic registry refuses metrics it was not told of.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descSamples, descLost, descFiltered, descDropped, descDrainErrors, descFrames, descUnnamed,
		descProfiles, descPushed, descRejected, descDroppedProfiles, descPushFailures,
		descQueued, descQueuedBytes, descProcesses, descDrainInterval,
		descSymCacheBytes, descSymBinaries, descSymLoads, descSymEvictions, descSymLoadErrors, descKernelBytes,
	} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Stats()
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	byLabel := func(d *prometheus.Desc, m map[string]uint64, known ...string) {
		// Known reasons are exported at 0 too, so that a rate over them
		// exists before the first loss.
		for _, k := range known {
			if _, ok := m[k]; !ok {
				counter(d, 0, k)
			}
		}
		for k, v := range m {
			counter(d, v, k)
		}
	}
	counter(descSamples, st.Samples)
	byLabel(descLost, st.Lost, bpf.LostStackCollision, bpf.LostStackError, bpf.LostCountMapFull)
	counter(descFiltered, st.Filtered)
	byLabel(descDropped, st.Dropped, "processes", "stacks")
	counter(descDrainErrors, st.DrainErrors)
	counter(descFrames, st.Frames)
	byLabel(descUnnamed, st.Unnamed)
	counter(descProfiles, st.Profiles)
	counter(descPushed, st.Pushed)
	counter(descRejected, st.Rejected)
	counter(descDroppedProfiles, st.DroppedProfiles)
	counter(descPushFailures, st.PushFailures)
	gauge(descQueued, float64(st.Queued))
	gauge(descQueuedBytes, float64(st.QueuedBytes))
	gauge(descProcesses, float64(st.Processes))
	gauge(descDrainInterval, st.DrainInterval.Seconds())

	s, ok := c.a.sym.(symbolizerStats)
	if !ok {
		return
	}
	sst := s.Stats()
	gauge(descSymCacheBytes, float64(sst.CacheBytes))
	gauge(descSymBinaries, float64(sst.BinariesCached))
	counter(descSymLoads, uint64(sst.BinariesLoaded))
	counter(descSymEvictions, uint64(sst.Evictions))
	counter(descSymLoadErrors, uint64(sst.LoadErrors))
	gauge(descKernelBytes, float64(sst.KernelBytes))
}
