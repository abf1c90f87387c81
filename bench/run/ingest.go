package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// workload is what the ingest phase sends, on a clock of whole windows.
type workload struct {
	services  int   // services svc0..svcN-1, each sending CPU and heap
	ticks     int   // windows per service
	longTicks int   // CPU windows of svc-long; 0 for none
	window    int64 // seconds per window
	end       int64 // Unix seconds: the end of the last window of every service
}

func (w workload) servicesFrom() int64 { return w.end - int64(w.ticks)*w.window }
func (w workload) longFrom() int64     { return w.end - int64(w.longTicks)*w.window }

// request is one POST /ingest.
type request struct {
	url   string
	file  *corpusFile
	stamp stamp
	body  []byte // filled by encodeBodies
}

func ingestURL(base, name string, from, until int64) string {
	q := url.Values{}
	q.Set("name", name)
	q.Set("from", strconv.FormatInt(from, 10))
	q.Set("until", strconv.FormatInt(until, 10))
	q.Set("format", "pprof")
	return base + "/ingest?" + q.Encode()
}

// planLong is svc-long's CPU profiles, oldest first: longTicks windows
// ending at w.end, window t sending cpu-(t%n).
func planLong(c *corpus, w workload, base string) []*request {
	var reqs []*request
	name := "app{service_name=svc-long,env=long,region=r0}"
	for t := range w.longTicks {
		from := w.longFrom() + int64(t)*w.window
		f := c.cpu[t%len(c.cpu)]
		reqs = append(reqs, &request{url: ingestURL(base, name, from, from+w.window), file: f,
			stamp: stamp{file: f, fromUnix: from, windowSecs: w.window}})
	}
	return reqs
}

// planServices is the 50 services, tick by tick: at tick t service k sends
// cpu-((k+t)%n) and heap-((k+t)%n), so that each service's heap profiles
// follow the recording's order (their alloc_* values grow, except where
// the index wraps, which looks like a restart).
func planServices(c *corpus, w workload, base string) []*request {
	var reqs []*request
	n := len(c.cpu)
	for t := range w.ticks {
		from := w.servicesFrom() + int64(t)*w.window
		for k := range w.services {
			name := fmt.Sprintf("app{service_name=svc%d,env=bench,region=r%d}", k, k%3)
			u := ingestURL(base, name, from, from+w.window)
			for _, f := range []*corpusFile{c.cpu[(k+t)%n], c.heap[(k+t)%n]} {
				reqs = append(reqs, &request{url: u, file: f, stamp: stamp{file: f, fromUnix: from, windowSecs: w.window}})
			}
		}
	}
	return reqs
}

// ingestPhase is the figures of one run of requests.
type ingestPhase struct {
	Name              string  `json:"name"`
	Requests          int     `json:"requests"` // one profile each
	PayloadBytes      int64   `json:"payload_bytes"`
	SampleRows        int64   `json:"sample_rows"`
	StackRows         int64   `json:"stack_rows"`
	WallSeconds       float64 `json:"wall_s"`
	ProfilesPerSecond float64 `json:"profiles_per_s"`
	PayloadMBPerSec   float64 `json:"payload_MB_per_s"`
	LatencyP50Ms      float64 `json:"latency_p50_ms"`
	LatencyP99Ms      float64 `json:"latency_p99_ms"`
	Errors            int     `json:"errors"`
	FirstError        string  `json:"first_error,omitempty"`
	// Server CPU: utime+stime of the hearth process over the phase.
	ServerCPUSeconds       float64     `json:"server_cpu_s"`
	ServerCPUMsPerProfile  float64     `json:"server_cpu_ms_per_profile"`
	ServerCores            float64     `json:"server_cpu_s_per_s"`          // server CPU seconds per wall second
	ProfilesPerCoreSecond  float64     `json:"profiles_per_server_cpu_s"`   // per core: profiles per server CPU second
	PayloadMBPerCoreSecond float64     `json:"payload_MB_per_server_cpu_s"` // per core: MB per server CPU second
	DriverCPUSeconds       float64     `json:"driver_cpu_s"`                // this program, sending
	MachineBusyCores       float64     `json:"machine_busy_cores"`          // every process on the machine
	ServerRSSPeakMiB       float64     `json:"server_rss_peak_MiB"`         // sampled every 100 ms
	ServerRSSEndMiB        float64     `json:"server_rss_end_MiB"`          // at the phase's end
	StatusCodes            map[int]int `json:"status_codes"`

	latencies []time.Duration // of the requests that succeeded, sorted
}

// send posts reqs with workers concurrent clients and measures the server
// process pid meanwhile.
func send(name string, reqs []*request, workers, pid int, rss *hearthproc.RSSSampler) (ingestPhase, error) {
	ph := ingestPhase{Name: name, Requests: len(reqs), StatusCodes: map[int]int{}}
	for _, r := range reqs {
		ph.PayloadBytes += int64(len(r.body))
		ph.SampleRows += int64(r.file.rows)
		ph.StackRows += int64(r.file.stacks)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	before, err := hearthproc.ReadStat(pid)
	if err != nil {
		return ph, err
	}
	rss.Reset()
	machine0, self0 := hearthproc.MachineBusySeconds(), hearthproc.SelfCPUSeconds()
	lat := make([]time.Duration, len(reqs))
	codes := make([]int, len(reqs))
	errs := make([]string, len(reqs))
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				resp, err := client.Post(reqs[i].url, "application/octet-stream", bytes.NewReader(reqs[i].body))
				if err != nil {
					errs[i] = err.Error()
					continue
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				codes[i] = resp.StatusCode
				if resp.StatusCode != http.StatusOK {
					errs[i] = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(msg))
				}
			}
		})
	}
	for i := range reqs {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	after, err := hearthproc.ReadStat(pid)
	if err != nil {
		return ph, err
	}
	ph.WallSeconds = wall.Seconds()
	ph.ProfilesPerSecond = float64(len(reqs)) / wall.Seconds()
	ph.PayloadMBPerSec = float64(ph.PayloadBytes) / 1e6 / wall.Seconds()
	ph.ServerCPUSeconds = after.CPUSeconds - before.CPUSeconds
	if len(reqs) > 0 {
		ph.ServerCPUMsPerProfile = ph.ServerCPUSeconds * 1000 / float64(len(reqs))
	}
	ph.ServerCores = ph.ServerCPUSeconds / wall.Seconds()
	if ph.ServerCPUSeconds > 0 {
		ph.ProfilesPerCoreSecond = float64(len(reqs)) / ph.ServerCPUSeconds
		ph.PayloadMBPerCoreSecond = float64(ph.PayloadBytes) / 1e6 / ph.ServerCPUSeconds
	}
	ph.DriverCPUSeconds = hearthproc.SelfCPUSeconds() - self0
	ph.MachineBusyCores = (hearthproc.MachineBusySeconds() - machine0) / wall.Seconds()
	ph.ServerRSSPeakMiB = max(rss.Peak(), after.RSSMiB)
	ph.ServerRSSEndMiB = after.RSSMiB
	var ok []time.Duration
	for i := range reqs {
		if errs[i] != "" {
			ph.Errors++
			if ph.FirstError == "" {
				ph.FirstError = errs[i]
			}
		} else {
			ok = append(ok, lat[i])
		}
		ph.StatusCodes[codes[i]]++
	}
	slices.Sort(ok)
	ph.latencies = ok
	ph.LatencyP50Ms, ph.LatencyP99Ms = percentiles(ok)
	return ph, nil
}

// sum adds phases into one named total.
func sum(name string, phases []ingestPhase) ingestPhase {
	t := ingestPhase{Name: name, StatusCodes: map[int]int{}}
	for _, p := range phases {
		t.Requests += p.Requests
		t.PayloadBytes += p.PayloadBytes
		t.SampleRows += p.SampleRows
		t.StackRows += p.StackRows
		t.WallSeconds += p.WallSeconds
		t.Errors += p.Errors
		if t.FirstError == "" {
			t.FirstError = p.FirstError
		}
		t.ServerCPUSeconds += p.ServerCPUSeconds
		t.DriverCPUSeconds += p.DriverCPUSeconds
		t.MachineBusyCores += p.MachineBusyCores * p.WallSeconds
		t.ServerRSSPeakMiB = max(t.ServerRSSPeakMiB, p.ServerRSSPeakMiB)
		t.ServerRSSEndMiB = p.ServerRSSEndMiB
		t.latencies = append(t.latencies, p.latencies...)
		for c, n := range p.StatusCodes {
			t.StatusCodes[c] += n
		}
	}
	slices.Sort(t.latencies)
	t.LatencyP50Ms, t.LatencyP99Ms = percentiles(t.latencies)
	if t.WallSeconds > 0 {
		t.ProfilesPerSecond = float64(t.Requests) / t.WallSeconds
		t.PayloadMBPerSec = float64(t.PayloadBytes) / 1e6 / t.WallSeconds
		t.ServerCores = t.ServerCPUSeconds / t.WallSeconds
		t.MachineBusyCores /= t.WallSeconds
	}
	if t.Requests > 0 {
		t.ServerCPUMsPerProfile = t.ServerCPUSeconds * 1000 / float64(t.Requests)
	}
	if t.ServerCPUSeconds > 0 {
		t.ProfilesPerCoreSecond = float64(t.Requests) / t.ServerCPUSeconds
		t.PayloadMBPerCoreSecond = float64(t.PayloadBytes) / 1e6 / t.ServerCPUSeconds
	}
	return t
}

// percentiles are the p50 and p99 of sorted latencies, in milliseconds.
func percentiles(sorted []time.Duration) (p50, p99 float64) {
	if len(sorted) == 0 {
		return 0, 0
	}
	return hearthproc.Ms(sorted[len(sorted)/2]), hearthproc.Ms(sorted[len(sorted)*99/100])
}
