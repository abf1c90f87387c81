package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is what the server tells Prometheus at /metrics: HTTP requests
// by route, and the running totals of ingest, storage and scraping, read
// from their Stats when gathered, so that nothing on the ingest path
// touches Prometheus types.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the server's metrics in reg (a new registry when
// nil), which may hold others already: the bucket's.
func newMetrics(s *Server, reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hearth_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"handler"}),
	}
	m.reg.MustRegister(
		m.requests, m.duration, serverCollector{s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// handler serves the metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument counts and times the requests next serves. The route is the
// pattern the mux matched (so that paths holding IDs do not each make a
// series), "grpc" for OTLP gRPC on the main port, "none" when nothing
// matched.
func (m *metrics) instrument(handler string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		h := handler
		if h == "" {
			h = r.Pattern
		}
		if h == "" {
			h = "none"
		}
		m.requests.WithLabelValues(h, strconv.Itoa(sw.code)).Inc()
		m.duration.WithLabelValues(h).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code written. Unwrap lets
// http.ResponseController reach the connection's own writer (flushes,
// deadlines), and Flush is kept for handlers that assert http.Flusher.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	w.wroteHeader = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	descIngestStored = prometheus.NewDesc("hearth_ingest_profiles_stored_total",
		"Profiles (ingest requests) stored, over every way in.", nil, nil)
	descIngestBytes = prometheus.NewDesc("hearth_ingest_bytes_total",
		"Bytes of the profiles stored, as sent.", nil, nil)
	descIngestRefused = prometheus.NewDesc("hearth_ingest_profiles_refused_total",
		"Profiles refused as bad input or by a limit, by reason (bad_data, unsupported, too_large, series_limit, other).", []string{"reason"}, nil)
	descIngestFailed = prometheus.NewDesc("hearth_ingest_profiles_failed_total",
		"Profiles not stored because storage failed; the client was told to retry.", nil, nil)
	descEventsStored = prometheus.NewDesc("hearth_ingest_events_stored_total",
		"Events (spans, log records, JSON lines) stored, over every way in.", nil, nil)
	descEventsRefused = prometheus.NewDesc("hearth_ingest_events_refused_total",
		"Events refused one by one as bad input (no IDs, bad times, lines that are not objects); requests refused whole are not counted.", nil, nil)
	descEventsFailed = prometheus.NewDesc("hearth_ingest_events_failed_total",
		"Events not stored because storage failed; the client was told to retry.", nil, nil)
	descEventsCut = prometheus.NewDesc("hearth_ingest_events_cut_total",
		"What the events limits cut from stored events: attributes dropped over --events.max-attributes, values cut to --events.max-value-bytes.", []string{"what"}, nil)
	descIngestInflight = prometheus.NewDesc("hearth_ingest_inflight_bytes",
		"Bytes held by ingest requests being decoded, against --limits.max-inflight-bytes.", nil, nil)
	descIngestBusy = prometheus.NewDesc("hearth_ingest_busy_total",
		"Ingest requests refused because --limits.max-inflight-bytes was reached (429, resource_exhausted); the client was told to retry.", nil, nil)
	descBehind = prometheus.NewDesc("hearth_storage_behind_refusals_total",
		"Writes refused (503, Retry-After) because a tenant's head was full while the previous one was still being written to a block.", nil, nil)
	descHeadEvents = prometheus.NewDesc("hearth_storage_head_events",
		"Events in memory, not yet in blocks.", nil, nil)
	descDamagedReads = prometheus.NewDesc("hearth_storage_damaged_reads_total",
		"Blocks left out of a query's answer because their data failed its checks as it was read; the answer says so.", nil, nil)
	descQueryWait = prometheus.NewDesc("hearth_query_priority_wait_seconds_total",
		"Time queries waited so that profiles arriving meanwhile had the CPU (--query.cpu-share).", nil, nil)

	descLimitsRefused = prometheus.NewDesc("hearth_limits_refused_total",
		"Requests and profiles refused by a tenant's limit, by tenant and limit (its key in the limits: section of the configuration file).", []string{"tenant", "limit"}, nil)

	descTenants = prometheus.NewDesc("hearth_storage_tenants",
		"Tenants with data.", nil, nil)
	descHeadSeries = prometheus.NewDesc("hearth_storage_head_series",
		"Series in the in-memory heads.", nil, nil)
	descHeadSamples = prometheus.NewDesc("hearth_storage_head_samples",
		"Sample rows in the in-memory heads.", nil, nil)
	descHeadBytes = prometheus.NewDesc("hearth_storage_head_bytes",
		"Estimated memory of the in-memory heads.", nil, nil)
	descBlocks = prometheus.NewDesc("hearth_storage_blocks",
		"Blocks on disk.", nil, nil)
	descBlockSamples = prometheus.NewDesc("hearth_storage_block_samples",
		"Sample rows in the blocks on disk.", nil, nil)
	descBlockBytes = prometheus.NewDesc("hearth_storage_block_bytes",
		"Size of the blocks' files on disk.", nil, nil)
	descOldestBlock = prometheus.NewDesc("hearth_storage_oldest_block_timestamp_seconds",
		"Start of the oldest block, unix seconds; absent with no block.", nil, nil)
	descAppends = prometheus.NewDesc("hearth_storage_appends_total",
		"Writes to storage (a batch of profiles is one), each logged before it is acknowledged.", nil, nil)
	descCutFailures = prometheus.NewDesc("hearth_storage_cut_failures_total",
		"Failed attempts to cut heads into blocks, retried.", nil, nil)
	descCutFailingSince = prometheus.NewDesc("hearth_storage_cut_failing_since_timestamp_seconds",
		"Since when cuts have failed without one succeeding (blocks are not being written; the heads and the log keep writes), unix seconds; absent while cuts succeed.", nil, nil)
	descCompactFailures = prometheus.NewDesc("hearth_storage_compaction_failures_total",
		"Failed runs of compaction and retention, retried.", nil, nil)
	descSyncFailures = prometheus.NewDesc("hearth_storage_sync_failures_total",
		"A querier's syncs with its bucket that failed in whole or part, retried.", nil, nil)
	descLeaseHeld = prometheus.NewDesc("hearth_compactor_lease_held",
		"1 while this compactor holds the bucket's compactor lease (and compacts), 0 while it stands by; absent on other targets.", nil, nil)
	descBlocksMarked = prometheus.NewDesc("hearth_compactor_blocks_marked_total",
		"Blocks this compactor marked for deletion (compacted or expired).", nil, nil)
	descBlocksDeleted = prometheus.NewDesc("hearth_compactor_blocks_deleted_total",
		"Marked blocks this compactor deleted after --compactor.deletion-delay.", nil, nil)
	descQuarantined = prometheus.NewDesc("hearth_storage_quarantined_total",
		"Blocks and checkpoints that failed their checks at start and were moved to a quarantine folder.", nil, nil)

	descScrapes = prometheus.NewDesc("hearth_scrape_scrapes_total",
		"Scrapes finished, failed ones included.", nil, nil)
	descScrapeFailures = prometheus.NewDesc("hearth_scrape_failures_total",
		"Scrapes that stored nothing: no answer in time, no profile, or a refused one.", nil, nil)
	descScrapeBytes = prometheus.NewDesc("hearth_scrape_bytes_total",
		"Response bytes of the scrapes stored.", nil, nil)
	descScrapeTargets = prometheus.NewDesc("hearth_scrape_targets",
		"Scrape targets configured now.", nil, nil)
)

// serverCollector reads the running totals of ingest, storage and scraping.
type serverCollector struct{ s *Server }

func (c serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descIngestStored, descIngestBytes, descIngestRefused, descIngestFailed, descIngestInflight, descIngestBusy, descQueryWait, descDamagedReads, descBehind, descHeadEvents,
		descEventsStored, descEventsRefused, descEventsFailed, descEventsCut,
		descLimitsRefused,
		descTenants, descHeadSeries, descHeadSamples, descHeadBytes, descBlocks, descBlockSamples, descBlockBytes,
		descOldestBlock, descAppends, descCutFailures, descCutFailingSince, descCompactFailures, descSyncFailures, descQuarantined,
		descLeaseHeld, descBlocksMarked, descBlocksDeleted,
		descScrapes, descScrapeFailures, descScrapeBytes, descScrapeTargets,
	} {
		ch <- d
	}
}

func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	is := c.s.ing.Stats()
	counter(descIngestStored, float64(is.Stored))
	counter(descIngestBytes, float64(is.StoredBytes))
	for k, v := range is.Refused {
		counter(descIngestRefused, float64(v), k)
	}
	counter(descIngestFailed, float64(is.Failed))
	ec := c.s.events.Counts()
	counter(descEventsStored, float64(ec.Stored))
	counter(descEventsRefused, float64(ec.Refused))
	counter(descEventsFailed, float64(ec.Failed))
	counter(descEventsCut, float64(ec.AttributesDropped), "attributes")
	counter(descEventsCut, float64(ec.ValuesCut), "values")
	inflight, busy := c.s.ing.Inflight()
	gauge(descIngestInflight, float64(inflight))
	counter(descIngestBusy, float64(busy))
	counter(descQueryWait, c.s.gov.Waited().Seconds())

	for _, r := range c.s.refusals.All() {
		counter(descLimitsRefused, float64(r.Count), r.Tenant, r.Limit)
	}

	ds := c.s.db.Stats()
	gauge(descTenants, float64(ds.Tenants))
	gauge(descHeadSeries, float64(ds.HeadSeries))
	gauge(descHeadSamples, float64(ds.HeadSamples))
	gauge(descHeadBytes, float64(ds.HeadBytes))
	gauge(descBlocks, float64(ds.Blocks))
	gauge(descBlockSamples, float64(ds.BlockSamples))
	gauge(descBlockBytes, float64(ds.BlockBytes))
	if !ds.OldestBlock.IsZero() {
		gauge(descOldestBlock, float64(ds.OldestBlock.UnixNano())/1e9)
	}
	counter(descAppends, float64(ds.Appends))
	counter(descCutFailures, float64(ds.CutFailures))
	if !ds.CutFailingSince.IsZero() {
		gauge(descCutFailingSince, float64(ds.CutFailingSince.UnixNano())/1e9)
	}
	counter(descCompactFailures, float64(ds.CompactFailures))
	counter(descSyncFailures, float64(ds.SyncFailures))
	counter(descQuarantined, float64(ds.Quarantined))
	if ds.Compactor {
		held := 0.0
		if ds.LeaseHeld {
			held = 1
		}
		gauge(descLeaseHeld, held)
		counter(descBlocksMarked, float64(ds.BlocksMarked))
		counter(descBlocksDeleted, float64(ds.BlocksDeleted))
	}
	counter(descDamagedReads, float64(ds.DamagedReads))
	counter(descBehind, float64(ds.Behind))
	ch <- prometheus.MustNewConstMetric(descHeadEvents, prometheus.GaugeValue, float64(ds.HeadEvents))

	ss := c.s.scrape.Stats()
	counter(descScrapes, float64(ss.Scrapes))
	counter(descScrapeFailures, float64(ss.Failures))
	counter(descScrapeBytes, float64(ss.Bytes))
	gauge(descScrapeTargets, float64(ss.Targets))
}
