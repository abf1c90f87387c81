package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
	"github.com/hearth-profiler/hearth/bench/spans"
)

// tempoConfig is Grafana Tempo's single binary on loopback with local
// storage under one folder, with what this workload needs besides:
//
//   - multitenancy on, so that X-Scope-OrgID names the tenant, as Hearth
//     takes it;
//   - ingestion limits raised (the defaults refuse more than 15 MB/s and
//     more than 10,000 traces in flight);
//   - the live store's ingestion_time_range_slack widened to 48 h: by
//     default a block whose spans are older than 2 minutes is dated "now",
//     and a workload spread over the past 24 h would be found by no time
//     range;
//   - metrics queries allowed over 48 h (24 h by default: a 24 h window
//     plus the time to send it is more);
//   - the backend's block list polled every 30 s rather than 5 minutes,
//     so that compaction (which plans from that list) starts within a run.
const tempoConfig = `target: all
multitenancy_enabled: true
stream_over_http_enabled: true
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {{.HTTPPort}}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {{.GRPCPort}}
  log_level: warn
  grpc_server_max_recv_msg_size: 67108864
distributor:
  receivers:
    otlp:
      protocols:
        grpc: {endpoint: "{{.OTLPGRPC}}", max_recv_msg_size_mib: 64}
        http: {endpoint: "{{.OTLPHTTP}}"}
memberlist: {bind_addr: [127.0.0.1], bind_port: {{.MemberlistPort}}, advertise_addr: 127.0.0.1, abort_if_cluster_join_fails: false}
live_store:
  ring: {instance_addr: 127.0.0.1}
  wal: {path: {{.Dir}}/live-store/traces, ingestion_time_range_slack: 48h}
  shutdown_marker_dir: {{.Dir}}/live-store/shutdown-marker
metrics_generator: {ring: {instance_addr: 127.0.0.1}, storage: {path: {{.Dir}}/generator/wal}}
querier: {frontend_worker: {frontend_address: "127.0.0.1:{{.GRPCPort}}"}}
query_frontend:
  metrics: {max_duration: 48h}
backend_scheduler: {local_work_path: {{.Dir}}/backend-scheduler}
backend_worker: {backend_scheduler_addr: "127.0.0.1:{{.GRPCPort}}"}
storage: {trace: {backend: local, blocklist_poll: 30s, wal: {path: {{.Dir}}/wal}, local: {path: {{.Dir}}/blocks}}}
overrides:
  defaults:
    ingestion: {rate_limit_bytes: 1000000000, burst_size_bytes: 1000000000, max_traces_per_user: 10000000}
usage_report: {reporting_enabled: false}
`

// tempo is a Grafana Tempo process.
type tempo struct {
	bin, dir, logPath, configPath string
	httpAddr, otlpGRPC            string
	tenant                        string
	cmd                           *exec.Cmd
	exited                        chan struct{}
}

func newTempo(bin, work, tenant string) (*tempo, error) {
	dir := filepath.Join(work, "tempo")
	var ports [5]int
	for i := range ports {
		a, err := hearthproc.FreeAddr()
		if err != nil {
			return nil, err
		}
		_, p, _ := strings.Cut(a, ":")
		ports[i], _ = strconv.Atoi(p)
	}
	t := &tempo{bin: bin, dir: dir, logPath: filepath.Join(work, "tempo.log"), configPath: filepath.Join(work, "tempo.yaml"),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]), otlpGRPC: fmt.Sprintf("127.0.0.1:%d", ports[2]), tenant: tenant}
	var sb strings.Builder
	err := template.Must(template.New("tempo").Parse(tempoConfig)).Execute(&sb, map[string]any{
		"Dir": dir, "HTTPPort": ports[0], "GRPCPort": ports[1], "OTLPGRPC": t.otlpGRPC,
		"OTLPHTTP": fmt.Sprintf("127.0.0.1:%d", ports[3]), "MemberlistPort": ports[4]})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return t, os.WriteFile(t.configPath, []byte(sb.String()), 0o644)
}

func (t *tempo) name() string     { return "tempo" }
func (t *tempo) otlpAddr() string { return t.otlpGRPC }
func (t *tempo) dataDir() string  { return t.dir }
func (t *tempo) pid() int         { return t.cmd.Process.Pid }

func (t *tempo) start() (time.Duration, error) {
	logFile, err := os.OpenFile(t.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	t.cmd = exec.Command(t.bin, "-config.file="+t.configPath)
	t.cmd.Stdout, t.cmd.Stderr = logFile, logFile
	t.exited = make(chan struct{})
	t0 := time.Now()
	if err := t.cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", t.bin, err)
	}
	go func() { t.cmd.Wait(); close(t.exited) }()
	client := &http.Client{Timeout: time.Second}
	for time.Since(t0) < 3*time.Minute {
		if resp, err := client.Get("http://" + t.httpAddr + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0), nil
			}
		}
		select {
		case <-t.exited:
			return 0, fmt.Errorf("tempo exited before it was ready; log: %s", logTail(t.logPath))
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.kill()
	return 0, fmt.Errorf("tempo not ready after 3 minutes; log: %s", logTail(t.logPath))
}

// stop sends SIGTERM and, since Tempo's shutdown can hang waiting on its
// query queue, SIGKILL after 15 s.
func (t *tempo) stop() error {
	if t.cmd == nil {
		return nil
	}
	if err := t.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-t.exited:
	case <-time.After(15 * time.Second):
		t.kill()
		return errors.New("tempo still running 15 s after SIGTERM; killed")
	}
	return nil
}

func (t *tempo) kill() {
	if t.cmd != nil {
		_ = t.cmd.Process.Kill()
		<-t.exited
	}
}

// tempoBlock is what the harness reads of a block's meta.json.
type tempoBlock struct {
	TotalObjects    int64  `json:"totalObjects"`
	Size            uint64 `json:"size"`
	CompactionLevel uint32 `json:"compactionLevel"`
}

// backendBlocks reads the tenant's blocks in the backend: those with a
// meta.json (a compacted block's is renamed meta.compacted.json, and the
// block is deleted an hour later).
func (t *tempo) backendBlocks() (blocks []tempoBlock, bytes int64, err error) {
	root := filepath.Join(t.dir, "blocks", t.tenant)
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(root, e.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var b tempoBlock
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, 0, fmt.Errorf("block %s: %w", e.Name(), err)
		}
		d, err := hearthproc.MeasureDisk(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, 0, err
		}
		blocks = append(blocks, b)
		bytes += d.AllBytes
	}
	return blocks, bytes, nil
}

// writeOut waits until every trace sent is in a block in the backend
// (the sum of the blocks' totalObjects reaches the traces sent: each
// trace is sent whole in one batch, so none is split over blocks), then
// until the backend's block list has not changed for stable, which is
// when compaction has nothing left to do; at most max in all.
func (t *tempo) writeOut(sent spans.Stats, stable, maxWait time.Duration) (writeOut, error) {
	w := writeOut{Waited: fmt.Sprintf("every trace in backend blocks (sum of meta.json totalObjects = %d), then the block list unchanged for %v", sent.Requests, stable)}
	t0 := time.Now()
	var last string
	var lastChange time.Time
	for {
		blocks, bytes, err := t.backendBlocks()
		if err != nil {
			return w, err
		}
		var objects int64
		levels := map[uint32]int{}
		for _, b := range blocks {
			objects += b.TotalObjects
			levels[b.CompactionLevel]++
		}
		state := fmt.Sprintf("%d blocks, %d bytes, %d traces, levels %v", len(blocks), bytes, objects, levels)
		if state != last {
			if last == "" {
				w.FirstState = state
			}
			last, lastChange = state, time.Now()
			w.Blocks, w.Objects, w.State = len(blocks), objects, state
			if objects >= sent.Requests && w.AllInBlocksS == 0 {
				w.AllInBlocksS = time.Since(t0).Seconds()
				if st, err := hearthproc.ReadStat(t.pid()); err == nil {
					w.ServerCPUSeconds = st.CPUSeconds
				}
			}
		}
		if w.AllInBlocksS > 0 && time.Since(lastChange) >= stable {
			w.Seconds = time.Since(t0).Seconds()
			return w, nil
		}
		if time.Since(t0) > maxWait {
			w.Seconds = time.Since(t0).Seconds()
			w.TimedOut = true
			return w, nil
		}
		time.Sleep(2 * time.Second)
	}
}

func (t *tempo) disk() (diskFigures, error) {
	_, bytes, err := t.backendBlocks()
	if err != nil {
		return diskFigures{}, err
	}
	all, err := hearthproc.MeasureDisk(t.dir)
	if err != nil {
		return diskFigures{}, err
	}
	return diskFigures{BlocksBytes: bytes, AllBytes: all.AllBytes, WALBytes: all.AllBytes - all.BlocksBytes,
		Note: "blocks: the tenant's backend blocks with a meta.json (compacted ones, kept an hour, left out); wal: the rest (live store and generator WAL, complete blocks kept 20 min)"}, nil
}

func (t *tempo) queries(r queryRange, sample spans.TraceSample) []query {
	base := "http://" + t.httpAddr
	rng := func(q string) string {
		v := url.Values{"q": {q}, "start": {strconv.FormatInt(r.from, 10)}, "end": {strconv.FormatInt(r.until, 10)}}
		return v.Encode()
	}
	search := url.Values{"q": {searchFilter}, "start": {strconv.FormatInt(r.from, 10)}, "end": {strconv.FormatInt(r.until, 10)}, "limit": {"20"}}
	return []query{
		{Name: queryGroupBy, URL: base + "/api/metrics/query?" + rng(`{ } | quantile_over_time(duration, .99) by (span.http.route)`),
			About: "TraceQL metrics, instant query over the whole range"},
		{Name: queryCountBy, URL: base + "/api/metrics/query?" + rng(`{ } | count_over_time() by (span.http.route)`),
			About: "TraceQL metrics, instant query; Tempo computes count and p99 in two queries"},
		{Name: queryTrace, URL: base + "/api/v2/traces/" + sample.TraceID + "?start=" + strconv.FormatInt(r.from, 10) + "&end=" + strconv.FormatInt(r.until, 10),
			About: "trace by ID over the range"},
		{Name: querySearch, URL: base + "/api/search?" + search.Encode(), About: "TraceQL search, 20 traces"},
		{Name: queryCompare, URL: base + "/api/metrics/query?" + rng(`{ kind = server } | compare({ duration > 800ms })`),
			About: "TraceQL metrics compare(), instant query: counts per attribute value in the selection and the baseline, which Grafana's Traces Drilldown ranks in the browser"},
	}
}

func (t *tempo) header() http.Header { return http.Header{"X-Scope-OrgID": {t.tenant}} }

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
