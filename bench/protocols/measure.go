package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// row is the figures of one protocol.
type row struct {
	Protocol     string
	Profiles     int
	Workers      int
	PprofBytes   int64 // the gzipped pprof profiles carried
	BodyBytes    int64 // the request bodies as sent
	StartSeconds float64
	WallSeconds  float64
	// Server: utime+stime of the hearth process over the sending, and
	// its VmHWM (peak RSS since it started) right after.
	ServerCPUSeconds float64
	PeakRSSMiB       float64
	// Every process on the machine, and this driver, over the sending:
	// the machine has few cores, so a busy neighbour shows here.
	MachineCPUSeconds float64
	DriverCPUSeconds  float64
	P50, P99          time.Duration
	Errors            int
	FirstError        string
	Stored            stored
	StopError         string // SIGTERM did not end the server cleanly
}

func (r row) profilesPerSecond() float64 { return float64(r.Profiles) / r.WallSeconds }
func (r row) pprofMBPerSecond() float64  { return float64(r.PprofBytes) / 1e6 / r.WallSeconds }
func (r row) cpuMsPerProfile() float64   { return r.ServerCPUSeconds * 1000 / float64(r.Profiles) }

// client is an HTTP client for one protocol's workers.
func client(h2c bool, workers int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
	tr.Protocols = new(http.Protocols)
	if h2c {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// requests builds the N requests of p to the server at t, one per
// profile, with their bodies already encoded.
func requests(p protocol, t target, w workload, b *bodies) ([]request, error) {
	reqs := make([]request, w.n)
	for i := range reqs {
		body := p.body(b, i)
		hr, err := p.request(t, w, i, body)
		if err != nil {
			return nil, err
		}
		reqs[i] = request{hr, len(body), len(b.pprof[i])}
	}
	return reqs, nil
}

// request is one request ready to send, and what it carries.
type request struct {
	*http.Request
	bodyBytes  int // as sent
	pprofBytes int // the gzipped pprof profile it carries, in whatever form
}

// send sends reqs with workers concurrent clients, each waiting for its
// answer before sending the next, and measures the server process pid
// meanwhile. reqs are used once.
func send(p protocol, reqs []request, workers, pid int) (row, error) {
	r := row{Protocol: p.name, Profiles: len(reqs), Workers: workers}
	for _, q := range reqs {
		r.BodyBytes += int64(q.bodyBytes)
		r.PprofBytes += int64(q.pprofBytes)
	}
	c := client(p.h2c, workers)
	defer c.CloseIdleConnections()
	lat := make([]time.Duration, len(reqs))
	errs := make([]error, len(reqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	before, err := hearthproc.ReadStat(pid)
	if err != nil {
		return r, err
	}
	machine0, self0 := hearthproc.MachineBusySeconds(), hearthproc.SelfCPUSeconds()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				t0 := time.Now()
				resp, err := c.Do(reqs[i].Request)
				if err != nil {
					errs[i] = err
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if err != nil {
					errs[i] = err
					continue
				}
				errs[i] = p.check(resp, body)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	after, err := hearthproc.ReadStat(pid)
	if err != nil {
		return r, err
	}
	r.WallSeconds = wall.Seconds()
	r.ServerCPUSeconds = after.CPUSeconds - before.CPUSeconds
	r.PeakRSSMiB = after.HWMMiB
	r.MachineCPUSeconds = hearthproc.MachineBusySeconds() - machine0
	r.DriverCPUSeconds = hearthproc.SelfCPUSeconds() - self0
	var ok []time.Duration
	for i, err := range errs {
		if err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = fmt.Sprintf("profile %d: %v", i, err)
			}
			continue
		}
		ok = append(ok, lat[i])
	}
	slices.Sort(ok)
	if len(ok) > 0 {
		r.P50, r.P99 = ok[len(ok)/2], ok[len(ok)*99/100]
	}
	return r, nil
}

// stored is what the server answers about the profiles sent, against
// what was sent.
type stored struct {
	// Profiles found: the points of cpu{} at a step of one window, each
	// window holding one profile, and the sum of their values.
	Points, WantPoints     int
	CPUNanos, WantCPUNanos int64
	// Distinct service_name values over the range.
	Services, WantServices int
	// The flame graph of one service: its total against the CPU time of
	// that service's profiles.
	Service                    string
	ServiceTotal, WantSvcTotal int64
	Err                        string // a query that failed
}

func (s stored) ok() bool {
	return s.Err == "" && s.Points == s.WantPoints && s.CPUNanos == s.WantCPUNanos &&
		s.Services == s.WantServices && s.ServiceTotal == s.WantSvcTotal
}

func (s stored) String() string {
	if s.Err != "" {
		return "query failed: " + s.Err
	}
	return fmt.Sprintf("%d of %d profiles (cpu %d of %d ns), %d of %d services, %s total %d of %d",
		s.Points, s.WantPoints, s.CPUNanos, s.WantCPUNanos, s.Services, s.WantServices, s.Service, s.ServiceTotal, s.WantSvcTotal)
}

// maxSteps keeps each series query under the server's bound on points
// per series (query.MaxSeriesPoints, 11,000).
const maxSteps = 10_000

// verify asks the server at base what it stored of w: the count and CPU
// total of every profile, the services, and one service's flame graph.
func verify(base string, w workload) stored {
	s := stored{WantPoints: w.n, WantServices: min(w.n, w.services), Service: w.service(0)}
	for i := range w.n {
		s.WantCPUNanos += w.file(i).cpuNanos
		if w.service(i) == s.Service {
			s.WantSvcTotal += w.file(i).cpuNanos
		}
	}
	rng := func(from, until int64) url.Values {
		return url.Values{"from": {strconv.FormatInt(from, 10)}, "until": {strconv.FormatInt(until, 10)}}
	}
	for from := w.start(); from < w.end; from += maxSteps * w.window {
		q := rng(from, min(from+maxSteps*w.window, w.end))
		q.Set("query", "cpu{}")
		q.Set("step", strconv.FormatInt(w.window, 10)+"s")
		var res struct {
			Series []struct {
				Points [][2]float64 `json:"points"`
			} `json:"series"`
		}
		if err := getJSON(base+"/api/v1/query/series?"+q.Encode(), &res); err != nil {
			s.Err = err.Error()
			return s
		}
		for _, se := range res.Series {
			s.Points += len(se.Points)
			for _, pt := range se.Points {
				s.CPUNanos += int64(pt[1])
			}
		}
	}
	var services []string
	if err := getJSON(base+"/api/v1/label/service_name/values?"+rng(w.start(), w.end).Encode(), &services); err != nil {
		s.Err = err.Error()
		return s
	}
	s.Services = len(services)
	q := rng(w.start(), w.end)
	q.Set("query", fmt.Sprintf("cpu{service_name=%q}", s.Service))
	q.Set("max_nodes", "16")
	var fg struct {
		Total int64 `json:"total"`
	}
	if err := getJSON(base+"/api/v1/query/flamegraph?"+q.Encode(), &fg); err != nil {
		s.Err = err.Error()
		return s
	}
	s.ServiceTotal = fg.Total
	return s
}

// apiAnswer is the envelope of Hearth's JSON API.
type apiAnswer struct {
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Error  string          `json:"error"`
}

// getJSON reads the data of a JSON API answer into v.
func getJSON(u string, v any) error {
	c := &http.Client{Timeout: 5 * time.Minute}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, body)
	}
	var a apiAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if err := json.Unmarshal(a.Data, v); err != nil {
		return fmt.Errorf("GET %s: data: %w", u, err)
	}
	return nil
}
