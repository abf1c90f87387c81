package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// queryCase is one query the benchmark times.
type queryCase struct {
	name     string
	path     string
	params   url.Values
	profiles int   // profiles in the selection
	want     int64 // the flame graph's expected total; 0 when not checked
}

func queryCases(w workload, long, svcs []*request, maxNodes int) []queryCase {
	rng := func(from, until int64) url.Values {
		return url.Values{"from": {strconv.FormatInt(from, 10)}, "until": {strconv.FormatInt(until, 10)}}
	}
	var cases []queryCase
	if w.longTicks > 0 {
		p := rng(w.longFrom(), w.end)
		p.Set("query", `cpu{service_name="svc-long"}`)
		p.Set("max_nodes", strconv.Itoa(maxNodes))
		var want int64
		for _, r := range long {
			want += r.file.cpuNanos
		}
		cases = append(cases, queryCase{name: fmt.Sprintf("flame graph, 1 service, %s (%d profiles)", span(w.longTicks, w.window), w.longTicks),
			path: "/api/v1/query/flamegraph", params: p, profiles: w.longTicks, want: want})
	}
	var wantAll int64
	for _, r := range svcs {
		wantAll += r.file.cpuNanos
	}
	hour := span(w.ticks, w.window)
	p := rng(w.servicesFrom(), w.end)
	p.Set("query", `cpu{env="bench"}`)
	p.Set("max_nodes", strconv.Itoa(maxNodes))
	cases = append(cases, queryCase{name: fmt.Sprintf("flame graph, %d services, %s (%d profiles)", w.services, hour, w.services*w.ticks),
		path: "/api/v1/query/flamegraph", params: p, profiles: w.services * w.ticks, want: wantAll})
	p = rng(w.servicesFrom(), w.end)
	p.Set("query", `alloc_space{service_name="svc0"}`)
	p.Set("max_nodes", strconv.Itoa(maxNodes))
	cases = append(cases, queryCase{name: fmt.Sprintf("flame graph alloc_space, 1 service, %s (%d profiles)", hour, w.ticks),
		path: "/api/v1/query/flamegraph", params: p, profiles: w.ticks})
	p = rng(w.servicesFrom(), w.end)
	p.Set("query", `cpu{env="bench"}`)
	p.Set("group_by", "service_name")
	cases = append(cases, queryCase{name: fmt.Sprintf("series by service_name, %d services, %s (%d profiles)", w.services, hour, w.services*w.ticks),
		path: "/api/v1/query/series", params: p, profiles: w.services * w.ticks})
	return cases
}

// span prints ticks windows as a duration: 360 × 10 s is "1h0m0s".
func span(ticks int, window int64) string {
	return (time.Duration(ticks) * time.Duration(window) * time.Second).String()
}

// queryResult is the figures of one query case.
type queryResult struct {
	Name     string `json:"name"`
	Request  string `json:"request"` // path?query, as sent
	Profiles int    `json:"profiles"`
	// StartToReadySeconds is the start of the server restarted just
	// before the cold call.
	StartToReadySeconds float64   `json:"start_to_ready_s,omitempty"`
	ColdMs              float64   `json:"cold_ms"`
	WarmMs              []float64 `json:"warm_ms"`
	WarmMedianMs        float64   `json:"warm_median_ms"`
	// Server CPU from /proc/PID/task/*/schedstat around each call.
	ColdServerCPUMs       float64 `json:"cold_server_cpu_ms"`
	WarmServerCPUMsMedian float64 `json:"warm_server_cpu_ms_median"`
	ResponseBytes         int     `json:"response_bytes"`
	// What came back, to check it is the whole selection.
	Total         int64   `json:"total,omitempty"`
	ExpectedTotal int64   `json:"expected_total,omitempty"`
	NumNodes      int     `json:"num_nodes,omitempty"`
	Truncated     bool    `json:"truncated,omitempty"`
	Series        int     `json:"series,omitempty"`
	Points        int     `json:"points,omitempty"`
	ServerRSSMiB  float64 `json:"server_rss_after_MiB"`
	Error         string  `json:"error,omitempty"`
}

// runQuery times one cold call and repeats warm calls against the server
// at addr, process pid.
func runQuery(addr string, pid int, qc queryCase, repeats int) queryResult {
	res := queryResult{Name: qc.name, Request: qc.path + "?" + qc.params.Encode(), Profiles: qc.profiles, ExpectedTotal: qc.want}
	client := &http.Client{Timeout: 10 * time.Minute}
	defer client.CloseIdleConnections()
	call := func() (wall, cpu time.Duration, body []byte, err error) {
		cpu0, _ := hearthproc.ThreadCPU(pid)
		t0 := time.Now()
		resp, err := client.Get("http://" + addr + res.Request)
		if err != nil {
			return 0, 0, nil, err
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		wall = time.Since(t0)
		cpu1, _ := hearthproc.ThreadCPU(pid)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %.300s", resp.Status, body)
		}
		return wall, cpu1 - cpu0, body, err
	}
	wall, cpu, body, err := call()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.ColdMs, res.ColdServerCPUMs, res.ResponseBytes = ms(wall), ms(cpu), len(body)
	if err := res.check(body); err != nil {
		res.Error = err.Error()
	}
	var cpus []float64
	for range repeats {
		wall, cpu, _, err := call()
		if err != nil {
			res.Error = err.Error()
			break
		}
		res.WarmMs = append(res.WarmMs, ms(wall))
		cpus = append(cpus, ms(cpu))
	}
	res.WarmMedianMs = median(res.WarmMs)
	res.WarmServerCPUMsMedian = median(cpus)
	if ps, err := hearthproc.ReadStat(pid); err == nil {
		res.ServerRSSMiB = ps.RSSMiB
	}
	return res
}

// check reads the answer's totals and compares the flame graph's total
// with what was sent.
func (res *queryResult) check(body []byte) error {
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			Total     int64 `json:"total"`
			NumNodes  int   `json:"numNodes"`
			Truncated bool  `json:"truncated"`
			Series    []struct {
				Points [][2]float64 `json:"points"`
			} `json:"series"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	res.Total, res.NumNodes, res.Truncated = ans.Data.Total, ans.Data.NumNodes, ans.Data.Truncated
	res.Series = len(ans.Data.Series)
	for _, s := range ans.Data.Series {
		res.Points += len(s.Points)
	}
	if res.ExpectedTotal != 0 && res.Total != res.ExpectedTotal {
		return fmt.Errorf("flame graph total %d, want %d (the CPU time sent)", res.Total, res.ExpectedTotal)
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
