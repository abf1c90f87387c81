package main

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
	"github.com/hearth-profiler/hearth/bench/spans"
)

// hearth is a hearth server process. Spans go to its OTLP gRPC port
// (--otlp.grpc.listen, grpc-go's own transport, as Tempo's 4317).
type hearth struct {
	cfg    hearthproc.Config
	srv    *hearthproc.Server
	tenant string
}

func newHearth(bin, work, tenant string, args []string) (*hearth, error) {
	addr, err := hearthproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	grpcAddr, err := hearthproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	return &hearth{tenant: tenant, cfg: hearthproc.Config{Binary: bin, Addr: addr, DataDir: filepath.Join(work, "hearth"),
		LogPath: filepath.Join(work, "hearth.log"), OTLPGRPCAddr: grpcAddr, ReadyTimeout: 5 * time.Minute, Args: args}}, nil
}

func (h *hearth) name() string     { return "hearth" }
func (h *hearth) otlpAddr() string { return h.cfg.OTLPGRPCAddr }
func (h *hearth) dataDir() string  { return h.cfg.DataDir }
func (h *hearth) pid() int         { return h.srv.PID() }

func (h *hearth) start() (time.Duration, error) {
	srv, ready, err := hearthproc.Start(h.cfg)
	if err != nil {
		return 0, err
	}
	h.srv = srv
	return ready, nil
}

func (h *hearth) stop() error {
	if h.srv == nil {
		return nil
	}
	_, err := h.srv.Stop(2 * time.Minute)
	h.srv = nil
	return err
}

func (h *hearth) kill() {
	if h.srv != nil {
		h.srv.Kill()
		h.srv = nil
	}
}

// writeOut cuts the heads into blocks (POST /-/flush), then waits for
// compaction, which runs on the server's own schedule (every minute,
// merging blocks into 6 h and then 24 h ones once their window is over):
// until the blocks under the data directory have not changed for stable.
func (h *hearth) writeOut(_ spans.Stats, stable, maxWait time.Duration) (writeOut, error) {
	w := writeOut{Waited: fmt.Sprintf("POST /-/flush, then the blocks unchanged for %v (compaction runs every minute)", stable)}
	t0 := time.Now()
	fl := hearthproc.Flush(h.cfg.Addr, "/-/flush")
	w.FlushSeconds = fl.Seconds
	if st, err := hearthproc.ReadStat(h.pid()); err == nil {
		w.ServerCPUSeconds = st.CPUSeconds
	}
	if fl.Method != "endpoint" {
		w.Waited = fmt.Sprintf("POST /-/flush answered %d: the blocks are those written in the background; then the blocks unchanged for %v", fl.Status, stable)
	}
	var last string
	var lastChange time.Time
	for {
		d, err := hearthproc.MeasureDisk(h.cfg.DataDir)
		if err != nil {
			return w, err
		}
		state := fmt.Sprintf("%d blocks, %d bytes in blocks", d.Blocks, d.BlocksBytes)
		if state != last {
			if last == "" {
				w.FirstState = state
			}
			last, lastChange = state, time.Now()
			w.Blocks, w.State = d.Blocks, state
		}
		if time.Since(lastChange) >= stable {
			w.Seconds = time.Since(t0).Seconds()
			return w, nil
		}
		if time.Since(t0) > maxWait {
			w.Seconds, w.TimedOut = time.Since(t0).Seconds(), true
			return w, nil
		}
		time.Sleep(2 * time.Second)
	}
}

func (h *hearth) disk() (diskFigures, error) {
	d, err := hearthproc.MeasureDisk(h.cfg.DataDir)
	if err != nil {
		return diskFigures{}, err
	}
	return diskFigures{BlocksBytes: d.BlocksBytes, AllBytes: d.AllBytes, WALBytes: d.WALBytes,
		Note: "blocks: everything under blocks directories (profiles and events of the tenant; no profiles are sent); wal: the write-ahead log"}, nil
}

// queries are the events API's (docs/events-queries.md): the group by of
// the speed section, a trace by ID, the search and compare.
func (h *hearth) queries(r queryRange, sample spans.TraceSample) []query {
	base := "http://" + h.cfg.Addr
	from, until := strconv.FormatInt(r.from, 10), strconv.FormatInt(r.until, 10)
	groupBy := url.Values{"q": {"{ }"}, "from": {from}, "until": {until}, "by": {"span.http.route"}, "calc": {"count,p99(duration)"}, "limit": {"1000"}}
	trace := url.Values{"from": {from}, "until": {until}}
	search := url.Values{"q": {searchFilter}, "from": {from}, "until": {until}, "limit": {"20"}}
	compare := url.Values{"q": {"{ kind = server }"}, "selection": {"{ duration > 800ms }"}, "from": {from}, "until": {until}}
	return []query{
		{Name: queryGroupBy, URL: base + "/api/v1/events/query?" + groupBy.Encode(), About: "count and p99(duration) by span.http.route in one query"},
		{Name: queryTrace, URL: base + "/api/v1/events/trace/" + sample.TraceID + "?" + trace.Encode(), About: "trace by ID over the range"},
		{Name: querySearch, URL: base + "/api/v1/events/search?" + search.Encode(), About: "the newest 20 events the filter selects"},
		{Name: queryCompare, URL: base + "/api/v1/events/compare?" + compare.Encode(), About: "compare the server spans of { duration > 800ms } with the other server spans"},
	}
}

func (h *hearth) header() http.Header { return http.Header{"X-Scope-OrgID": {h.tenant}} }
