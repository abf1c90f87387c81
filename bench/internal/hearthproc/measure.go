package hearthproc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Flush and disk, queries: what every driver measures the same way.

// FlushInfo says how a server's heads were cut into blocks.
type FlushInfo struct {
	Method  string  `json:"method"` // "endpoint" or "shutdown"
	Status  int     `json:"endpoint_status,omitempty"`
	Seconds float64 `json:"endpoint_s,omitempty"`
}

// Flush asks the server at addr to cut its heads into blocks now, with a
// POST to path.
func Flush(addr, path string) FlushInfo {
	t0 := time.Now()
	resp, err := http.Post("http://"+addr+path, "", nil)
	if err != nil {
		return FlushInfo{Method: "shutdown"}
	}
	resp.Body.Close()
	fi := FlushInfo{Status: resp.StatusCode, Seconds: time.Since(t0).Seconds(), Method: "shutdown"}
	if resp.StatusCode/100 == 2 {
		fi.Method = "endpoint"
	}
	return fi
}

// Disk is the bytes under a data directory.
type Disk struct {
	AllBytes    int64 `json:"all_bytes"`
	BlocksBytes int64 `json:"blocks_bytes"` // under a directory named blocks
	WALBytes    int64 `json:"wal_bytes"`    // under a directory named wal
	Blocks      int   `json:"blocks"`       // directories directly under a blocks directory
	Files       int   `json:"files"`
}

// MeasureDisk counts the bytes under dir.
func MeasureDisk(dir string) (Disk, error) {
	var d Disk
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if e.IsDir() {
			if len(parts) >= 2 && parts[len(parts)-2] == "blocks" {
				d.Blocks++
			}
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		d.Files++
		d.AllBytes += info.Size()
		switch {
		case containsDir(parts, "blocks"):
			d.BlocksBytes += info.Size()
		case containsDir(parts, "wal"):
			d.WALBytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("measure %s: %w", dir, err)
	}
	return d, nil
}

func containsDir(parts []string, name string) bool {
	for _, p := range parts[:len(parts)-1] {
		if p == name {
			return true
		}
	}
	return false
}

// Query is one query a driver times.
type Query struct {
	Name     string
	Path     string
	Params   url.Values
	Profiles int   // profiles in the selection
	Want     int64 // the flame graph's expected total; 0 when not checked
	// Body, when set, is POSTed with ContentType: a Connect call
	// (Pyroscope's query API). Read, when set, reads its answer's flame
	// graph total and node count instead of Hearth's JSON.
	Body        []byte
	ContentType string
	Read        func(body []byte) (total int64, nodes int, err error)
	// CountBucket reads the server's object-store counters (ReadBucketIO)
	// around the cold call and each warm call.
	CountBucket bool
}

// QueryResult is the figures of one query.
type QueryResult struct {
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
	// With Query.CountBucket: the object store requests of the cold call,
	// and the median of the warm calls'.
	ColdBucket *BucketIO `json:"cold_bucket,omitempty"`
	// StartBucket is what the server asked of the bucket from its start
	// to the cold call: opening the blocks, which fills its cache.
	StartBucket *BucketIO `json:"start_bucket,omitempty"`
	WarmBucket  *BucketIO `json:"warm_bucket_median,omitempty"`
}

// RunQuery times one cold call and repeats warm calls of q against the
// server at addr, process pid.
func RunQuery(addr string, pid int, q Query, repeats int) QueryResult {
	res := QueryResult{Name: q.Name, Request: q.Path + "?" + q.Params.Encode(), Profiles: q.Profiles, ExpectedTotal: q.Want}
	if q.Body != nil {
		res.Request = "POST " + q.Path + " (" + q.ContentType + ")"
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	defer client.CloseIdleConnections()
	var bucketErr error
	bucketIO := func() BucketIO {
		if !q.CountBucket {
			return BucketIO{}
		}
		b, err := ReadBucketIO(addr)
		if err != nil && bucketErr == nil {
			bucketErr = fmt.Errorf("read bucket counters: %w", err)
		}
		return b
	}
	call := func() (wall, cpu time.Duration, body []byte, err error) {
		cpu0, _ := ThreadCPU(pid)
		t0 := time.Now()
		var resp *http.Response
		if q.Body != nil {
			resp, err = client.Post("http://"+addr+q.Path, q.ContentType, bytes.NewReader(q.Body))
		} else {
			resp, err = client.Get("http://" + addr + res.Request)
		}
		if err != nil {
			return 0, 0, nil, err
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		wall = time.Since(t0)
		cpu1, _ := ThreadCPU(pid)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %.300s", resp.Status, body)
		}
		return wall, cpu1 - cpu0, body, err
	}
	io0 := bucketIO()
	if q.CountBucket {
		start := io0
		res.StartBucket = &start
	}
	wall, cpu, body, err := call()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.ColdMs, res.ColdServerCPUMs, res.ResponseBytes = Ms(wall), Ms(cpu), len(body)
	if q.CountBucket {
		cold := bucketIO().Sub(io0)
		res.ColdBucket = &cold
	}
	if q.Read != nil {
		if res.Total, res.NumNodes, err = q.Read(body); err == nil && res.ExpectedTotal != 0 && res.Total != res.ExpectedTotal {
			err = fmt.Errorf("flame graph total %d, want %d (the CPU time sent)", res.Total, res.ExpectedTotal)
		}
		if err != nil {
			res.Error = err.Error()
		}
	} else if err := res.check(body); err != nil {
		res.Error = err.Error()
	}
	var cpus []float64
	var warmIO []BucketIO
	for range repeats {
		io0 := bucketIO()
		wall, cpu, _, err := call()
		if err != nil {
			res.Error = err.Error()
			break
		}
		if q.CountBucket {
			warmIO = append(warmIO, bucketIO().Sub(io0))
		}
		res.WarmMs = append(res.WarmMs, Ms(wall))
		cpus = append(cpus, Ms(cpu))
	}
	if len(warmIO) > 0 {
		slices.SortFunc(warmIO, func(a, b BucketIO) int { return int(a.Ops - b.Ops) })
		m := warmIO[len(warmIO)/2]
		res.WarmBucket = &m
	}
	if bucketErr != nil && res.Error == "" {
		res.Error = bucketErr.Error()
	}
	res.WarmMedianMs = Median(res.WarmMs)
	res.WarmServerCPUMsMedian = Median(cpus)
	if ps, err := ReadStat(pid); err == nil {
		res.ServerRSSMiB = ps.RSSMiB
	}
	return res
}

// check reads the answer's totals and compares the flame graph's total
// with what was sent.
func (res *QueryResult) check(body []byte) error {
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

// Ms is d in milliseconds, to the microsecond.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Median is the median of xs, 0 when it is empty.
func Median(xs []float64) float64 {
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
