package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"
	"github.com/grafana/pyroscope-go"

	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

func newServer(t *testing.T, mut func(*server.Config)) *httptest.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SelfProfileInterval = 0
	if mut != nil {
		mut(&cfg)
	}
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}

// tlog sends a server's log lines to the test log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func call(t *testing.T, method, u string, body io.Reader, header map[string]string) (int, apiResponse) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r apiResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v: %s", method, u, err, raw)
	}
	return resp.StatusCode, r
}

func get[T any](t *testing.T, base, path string, q url.Values) T {
	t.Helper()
	code, r := call(t, "GET", base+path+"?"+q.Encode(), nil, nil)
	if code != 200 || r.Status != "success" {
		t.Fatalf("GET %s?%s: %d %s: %s", path, q.Encode(), code, r.ErrorType, r.Error)
	}
	var v T
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return v
}

type node struct {
	Name     string  `json:"name"`
	Self     int64   `json:"self"`
	Total    int64   `json:"total"`
	Children []*node `json:"children"`
}

type flameGraph struct {
	ProfileType string `json:"profileType"`
	Total       int64  `json:"total"`
	Root        *node  `json:"root"`
}

// findPath reports whether the tree holds a path whose names contain the
// given ones in order (not necessarily adjacent).
func findPath(n *node, names []string) bool {
	if len(names) == 0 {
		return true
	}
	if n.Name == names[0] {
		names = names[1:]
		if len(names) == 0 {
			return true
		}
	}
	for _, c := range n.Children {
		if findPath(c, names) {
			return true
		}
	}
	return false
}

//go:noinline
func sdkTestBurnCPU(d time.Duration) uint64 {
	var x uint64
	for start := time.Now(); time.Since(start) < d; {
		for i := 0; i < 1e5; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

var sdkSink [][]byte

//go:noinline
func sdkTestAllocate() {
	for i := 0; i < 2000; i++ {
		sdkSink = append(sdkSink, make([]byte, 4096))
	}
	sdkSink = sdkSink[:0]
}

//go:noinline
func sdkTestContend() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				mu.Lock()
				time.Sleep(50 * time.Microsecond)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestPyroscopeSDK runs the real pyroscope-go SDK in this process against
// Hearth and queries what it sent.
func TestPyroscopeSDK(t *testing.T) {
	ts := newServer(t, nil)
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	defer runtime.SetMutexProfileFraction(0)
	defer runtime.SetBlockProfileRate(0)
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "sdk-test",
		ServerAddress:   ts.URL,
		Tags:            map[string]string{"env": "test", "region": "eu-1"},
		UploadRate:      time.Second,
		TenantID:        "sdk",
		ProfileTypes: []pyroscope.ProfileType{
			pyroscope.ProfileCPU, pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace,
			pyroscope.ProfileInuseObjects, pyroscope.ProfileInuseSpace, pyroscope.ProfileGoroutines,
			pyroscope.ProfileMutexCount, pyroscope.ProfileMutexDuration,
			pyroscope.ProfileBlockCount, pyroscope.ProfileBlockDuration,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		sdkTestBurnCPU(700 * time.Millisecond)
		sdkTestAllocate()
		sdkTestContend()
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}

	q := func(kv ...string) url.Values {
		v := url.Values{"from": {"-10m"}, "until": {"now"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tenant := map[string]string{"X-Scope-OrgID": "sdk"}
	code, r := call(t, "GET", ts.URL+"/api/v1/profile_types?"+q().Encode(), nil, tenant)
	if code != 200 {
		t.Fatalf("profile_types: %d %s", code, r.Error)
	}
	var types []string
	json.Unmarshal(r.Data, &types)
	for _, want := range []string{
		"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
		"memory:alloc_space:bytes:space:bytes", "memory:inuse_space:bytes:space:bytes",
		"goroutine:goroutine:count:goroutine:count",
		"mutex:delay:nanoseconds:contentions:count", "block:delay:nanoseconds:contentions:count",
	} {
		if !contains(types, want) {
			t.Errorf("profile types %v lack %s", types, want)
		}
	}
	// Other tenants see nothing of it.
	if _, r := call(t, "GET", ts.URL+"/api/v1/profile_types?"+q().Encode(), nil, nil); string(r.Data) != "[]" {
		t.Errorf("tenant anonymous sees %s, want []", r.Data)
	}

	code, r = call(t, "GET", ts.URL+"/api/v1/query/flamegraph?"+q("query", `cpu{service_name="sdk-test", env="test"}`).Encode(), nil, tenant)
	if code != 200 {
		t.Fatalf("flamegraph: %d %s", code, r.Error)
	}
	var fg flameGraph
	json.Unmarshal(r.Data, &fg)
	if fg.Total < int64(500*time.Millisecond) {
		t.Errorf("CPU total %v, want at least 0.5s of the ~2s burnt", time.Duration(fg.Total))
	}
	if !findPath(fg.Root, []string{"testing.tRunner", "github.com/hearth-profiler/hearth/internal/server_test.TestPyroscopeSDK", "github.com/hearth-profiler/hearth/internal/server_test.sdkTestBurnCPU"}) {
		t.Errorf("CPU flame graph lacks tRunner → TestPyroscopeSDK → sdkTestBurnCPU")
	}
	code, r = call(t, "GET", ts.URL+"/api/v1/query/flamegraph?"+q("query", `alloc_space{service_name="sdk-test"}`).Encode(), nil, tenant)
	json.Unmarshal(r.Data, &fg)
	if code != 200 || !findPath(fg.Root, []string{"github.com/hearth-profiler/hearth/internal/server_test.sdkTestAllocate"}) {
		t.Errorf("alloc_space flame graph (%d %s) lacks sdkTestAllocate", code, r.Error)
	}
	code, r = call(t, "GET", ts.URL+"/api/v1/label/region/values?"+q().Encode(), nil, tenant)
	if code != 200 || string(r.Data) != `["eu-1"]` {
		t.Errorf("region values: %d %s, want [\"eu-1\"]", code, r.Data)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func corpusProfile(t *testing.T, i int) []byte {
	t.Helper()
	data, err := os.ReadFile(testfiles.CorpusCPU(t)[i])
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestBadInput sends malformed input of every kind and checks that each
// gets a 4xx whose message names the cause, and that data accepted before
// stays intact.
func TestBadInput(t *testing.T) {
	ts := newServer(t, func(c *server.Config) {
		c.MaxBodyBytes = 64 << 10
		c.Limits.MaxStackDepth = 20
	})
	good := corpusProfile(t, 0) // stacks of at most 16 frames
	ingest := func(params string) string { return ts.URL + "/ingest?" + params }
	code, r := call(t, "POST", ingest("name=good.cpu{env=x}&format=pprof&from=1700000000&until=1700000010"), bytes.NewReader(good), nil)
	if code != 200 {
		t.Fatalf("good profile refused: %d %s", code, r.Error)
	}
	before := get[flameGraph](t, ts.URL, "/api/v1/query/flamegraph", url.Values{"query": {`cpu{service_name="good"}`}, "from": {"1699999000"}, "until": {"1700001000"}})

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("profile", "p.pprof")
	fw.Write([]byte("not a profile"))
	mw.Close()

	cases := []struct {
		name, method, url string
		body              []byte
		contentType       string
		status            int
		msg               string
	}{
		{"malformed pprof", "POST", ingest("name=a.cpu&format=pprof"), []byte("garbage"), "", 400, "parse pprof"},
		{"malformed pprof in multipart", "POST", ingest("name=a.cpu"), mp.Bytes(), mw.FormDataContentType(), 400, "parse pprof"},
		{"multipart without boundary", "POST", ingest("name=a.cpu"), []byte("x"), "multipart/form-data", 400, "boundary"},
		{"bad folded line", "POST", ingest("name=a.cpu&format=folded"), []byte("a;b 1\na;b x\n"), "", 400, "line 2"},
		{"unknown format", "POST", ingest("name=a.cpu&format=gif"), []byte("x"), "", 415, "unknown format"},
		{"unknown units", "POST", ingest("name=a.cpu&format=folded&units=furlongs"), []byte("a 1"), "", 400, "unknown units"},
		{"unsupported format", "POST", ingest("name=a.cpu&format=trie"), []byte("x"), "", 415, "not supported"},
		{"malformed jfr", "POST", ingest("name=a.cpu&format=jfr"), []byte("not a recording"), "", 400, "jfr"},
		{"missing name", "POST", ingest("format=folded"), []byte("a 1"), "", 400, "name is required"},
		{"bad label syntax", "POST", ingest("name=a.cpu{env}&format=folded"), []byte("a 1"), "", 400, "has no value"},
		{"bad from", "POST", ingest("name=a.cpu&from=yesterday"), []byte("a 1"), "", 400, "from:"},
		{"empty body", "POST", ingest("name=a.cpu"), nil, "", 400, "no profile"},
		{"body over limit", "POST", ingest("name=a.cpu&format=folded"), bytes.Repeat([]byte("a;b 1\n"), 20000), "", 413, "too large"},
		{"stack too deep", "POST", ingest("name=a.cpu&format=pprof"), corpusProfile(t, 1), "", 413, "over the limit of 20"},
		{"query parse error", "GET", ts.URL + "/api/v1/query/flamegraph?query=" + url.QueryEscape(`cpu{a=`), nil, "", 400, "1:7:"},
		{"query without selector", "GET", ts.URL + "/api/v1/query/top", nil, "", 400, "query is required"},
		{"bad regexp filter", "GET", ts.URL + "/api/v1/query/top?query=cpu{}&focus=" + url.QueryEscape("("), nil, "", 400, "focus"},
		{"empty range", "GET", ts.URL + "/api/v1/query/top?query=cpu{}&from=now&until=-1h", nil, "", 400, "empty time range"},
		{"bad step", "GET", ts.URL + "/api/v1/query/series?query=cpu{}&step=fast", nil, "", 400, "step"},
		{"unknown endpoint", "GET", ts.URL + "/api/v1/nope", nil, "", 404, "no API endpoint"},
		{"unserved Pyroscope endpoint", "GET", ts.URL + "/pyroscope/label-values?label=x", nil, "", 404, "no API endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.contentType != "" {
				hdr["Content-Type"] = c.contentType
			}
			var body io.Reader
			if c.body != nil {
				body = bytes.NewReader(c.body)
			}
			code, r := call(t, c.method, c.url, body, hdr)
			if code != c.status || r.Status != "error" || !strings.Contains(r.Error, c.msg) {
				t.Errorf("got %d %q %q, want %d with a message containing %q", code, r.Status, r.Error, c.status, c.msg)
			}
		})
	}
	after := get[flameGraph](t, ts.URL, "/api/v1/query/flamegraph", url.Values{"query": {`cpu{service_name="good"}`}, "from": {"1699999000"}, "until": {"1700001000"}})
	if before.Total == 0 || after.Total != before.Total {
		t.Errorf("accepted data changed after bad input: total %d, was %d", after.Total, before.Total)
	}
}

// TestQueries covers every query endpoint over two services.
func TestQueries(t *testing.T) {
	ts := newServer(t, nil)
	base := int64(1700000000)
	for i := 0; i < 6; i++ {
		for _, svc := range []string{"api", "db"} {
			u := fmt.Sprintf("%s/ingest?name=%s{env=prod,version=v%d}&format=pprof&from=%d&until=%d", ts.URL, svc, i/3, base+int64(i)*10, base+int64(i)*10+10)
			code, r := call(t, "POST", u, bytes.NewReader(corpusProfile(t, i)), nil)
			if code != 200 {
				t.Fatalf("ingest: %d %s", code, r.Error)
			}
		}
	}
	rng := url.Values{"from": {fmt.Sprint(base)}, "until": {fmt.Sprint(base + 60)}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, x := range rng {
			v[k] = x
		}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	names := get[[]string](t, ts.URL, "/api/v1/labels", rng)
	if strings.Join(names, ",") != "__profile_type__,env,service_name,version" {
		t.Errorf("label names %v", names)
	}
	vals := get[[]string](t, ts.URL, "/api/v1/label/service_name/values", rng)
	if strings.Join(vals, ",") != "api,db" {
		t.Errorf("service_name values %v", vals)
	}
	vals = get[[]string](t, ts.URL, "/api/v1/label/version/values", with("query", `{service_name="api",version!="v0"}`))
	if strings.Join(vals, ",") != "v1" {
		t.Errorf("version values for version!=v0: %v", vals)
	}
	series := get[[]map[string]string](t, ts.URL, "/api/v1/series", with("query", `cpu{service_name=~"a.*"}`))
	if len(series) != 2 { // v0 and v1
		t.Errorf("series of cpu{service_name=~\"a.*\"}: %v", series)
	}
	all := get[flameGraph](t, ts.URL, "/api/v1/query/flamegraph", with("query", `cpu{}`))
	api := get[flameGraph](t, ts.URL, "/api/v1/query/flamegraph", with("query", `cpu{service_name="api"}`))
	if all.Total == 0 || api.Total*2 != all.Total {
		t.Errorf("total of both services %d, of api %d: each sent the same profiles", all.Total, api.Total)
	}
	small := get[struct {
		Truncated bool `json:"truncated"`
		NumNodes  int  `json:"numNodes"`
		Total     int64
		Root      *node
	}](t, ts.URL, "/api/v1/query/flamegraph", with("query", `cpu{}`, "max_nodes", "10"))
	if !small.Truncated || small.Total != all.Total || countNodes(small.Root) > 10+10 {
		t.Errorf("max_nodes=10: truncated=%v total=%d (want %d), %d nodes", small.Truncated, small.Total, all.Total, countNodes(small.Root))
	}
	focus := get[flameGraph](t, ts.URL, "/api/v1/query/flamegraph", with("query", `cpu{}`, "focus", "main.f03$"))
	if focus.Total == 0 || focus.Total >= all.Total {
		t.Errorf("focus total %d of %d", focus.Total, all.Total)
	}
	ignore := get[flameGraph](t, ts.URL, "/api/v1/query/flamegraph", with("query", `cpu{}`, "ignore", "main.f03$"))
	if focus.Total+ignore.Total != all.Total {
		t.Errorf("focus (%d) + ignore (%d) of one function != total %d", focus.Total, ignore.Total, all.Total)
	}
	hide := get[flameGraph](t, ts.URL, "/api/v1/query/flamegraph", with("query", `cpu{}`, "hide", "^runtime\\."))
	if hide.Total != all.Total || findPath(hide.Root, []string{"runtime.goexit"}) {
		t.Errorf("hide: total %d (want %d), runtime frames still shown: %v", hide.Total, all.Total, findPath(hide.Root, []string{"runtime.goexit"}))
	}
	top := get[struct {
		Entries []struct {
			Name  string
			Self  int64
			Total int64
		}
	}](t, ts.URL, "/api/v1/query/top", with("query", `cpu{}`, "limit", "5", "sort", "total"))
	if len(top.Entries) != 5 || top.Entries[0].Name != "main.runWindow.func1" || top.Entries[0].Total > all.Total {
		t.Errorf("top by total: %+v, want 5 rows led by the workers' root function", top.Entries)
	}
	for i := 1; i < len(top.Entries); i++ {
		if top.Entries[i].Total > top.Entries[i-1].Total {
			t.Errorf("top by total not in order: %+v", top.Entries)
		}
	}
	ser := get[struct {
		Series []struct {
			Labels map[string]string
			Points [][2]float64
		}
	}](t, ts.URL, "/api/v1/query/series", with("query", `cpu{}`, "step", "10s", "group_by", "service_name"))
	if len(ser.Series) != 2 || len(ser.Series[0].Points) != 6 || ser.Series[0].Labels["service_name"] != "api" {
		t.Errorf("series grouped by service: %+v", ser.Series)
	}
	var sum float64
	for _, s := range ser.Series {
		for _, p := range s.Points {
			sum += p[1]
		}
	}
	if int64(sum) != all.Total {
		t.Errorf("series sum %v, flame graph total %d", sum, all.Total)
	}
	diff := get[struct {
		BaselineTotal, ComparisonTotal int64
	}](t, ts.URL, "/api/v1/query/diff", url.Values{
		"baseline_query": {`cpu{version="v0"}`}, "baseline_from": rng["from"], "baseline_until": rng["until"],
		"comparison_query": {`cpu{version="v1"}`}, "comparison_from": rng["from"], "comparison_until": rng["until"],
	})
	if diff.BaselineTotal == 0 || diff.ComparisonTotal == 0 || diff.BaselineTotal+diff.ComparisonTotal != all.Total {
		t.Errorf("diff totals %d + %d, want a split of %d", diff.BaselineTotal, diff.ComparisonTotal, all.Total)
	}
	resp, err := http.Get(ts.URL + "/api/v1/query/pprof?" + with("query", `{service_name="api"}`).Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p, err := gpprof.Parse(resp.Body)
	if err != nil {
		t.Fatalf("exported pprof does not parse: %v", err)
	}
	var cpu int64
	for _, s := range p.Sample {
		cpu += s.Value[0]
	}
	if len(p.SampleType) != 2 || cpu != api.Total {
		t.Errorf("pprof: %d sample types, cpu total %d (want 2 types, %d)", len(p.SampleType), cpu, api.Total)
	}
}

func countNodes(n *node) int {
	c := 1
	for _, ch := range n.Children {
		c += countNodes(ch)
	}
	return c
}
