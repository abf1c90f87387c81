package api_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hearth-profiler/hearth/internal/api"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/jfr"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
)

// The recording of internal/jfr/testdata/HearthJfrDemo.java, and the
// totals that the JDK's own JFR reader finds in it.
const (
	demoRecording = "../jfr/testdata/demo.jfr.gz"
	demoSummary   = "../jfr/testdata/demo.summary.txt"
)

func newAPI(t *testing.T) *httptest.Server {
	t.Helper()
	s := profiletest.OpenStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := api.New(s.Ing, query.NewEngine(s.DB), api.Options{}, logger)
	mux := http.NewServeMux()
	a.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

type response struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func do(t *testing.T, req *http.Request) (int, response) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, r
}

// uploadURL is the URL the Pyroscope Java SDK's exporter builds.
func uploadURL(base, name string, from, until time.Time) string {
	q := url.Values{}
	q.Set("name", name)
	q.Set("units", "samples")
	q.Set("aggregationType", "sum")
	q.Set("sampleRate", "100")
	q.Set("from", strconv.FormatInt(from.Unix(), 10))
	q.Set("until", strconv.FormatInt(until.Unix(), 10))
	q.Set("spyName", "javaspy")
	q.Set("format", "jfr")
	return base + "/ingest?" + q.Encode()
}

// multipartBody builds the body the Java SDK sends: a "jfr" part and, when
// labels is not nil, a "labels" part, each gzipped unless told otherwise.
func multipartBody(t *testing.T, recording, labels []byte, gzipParts bool) (string, *bytes.Buffer) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	add := func(field string, data []byte, contentType string) {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, field))
		h.Set("Content-Type", contentType)
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if gzipParts {
			zw := gzip.NewWriter(w)
			zw.Write(data)
			zw.Close()
		} else {
			w.Write(data)
		}
	}
	add("jfr", recording, "application/octet-stream")
	if labels != nil {
		add("labels", labels, "application/x-protobuf")
	}
	mw.Close()
	return mw.FormDataContentType(), &body
}

func readDemo(t *testing.T) (plain []byte, summary map[string]int64) {
	t.Helper()
	f, err := os.ReadFile(demoRecording)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err = io.ReadAll(zr); err != nil {
		t.Fatal(err)
	}
	sf, err := os.Open(demoSummary)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	summary = map[string]int64{}
	sc := bufio.NewScanner(sf)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("summary line %q", sc.Text())
		}
		summary[k] = n
	}
	return plain, summary
}

// labelsSnapshot encodes the Java SDK's LabelsSnapshot message: context 1
// is {controller="/cart"}.
func labelsSnapshot() []byte {
	entry := func(fields ...[]byte) []byte { return bytes.Join(fields, nil) }
	varintField := func(n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
	}
	bytesField := func(n protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), b)
	}
	ctx := bytesField(1, entry(varintField(1, 1), varintField(2, 2)))
	return entry(
		bytesField(1, entry(varintField(1, 1), bytesField(2, ctx))),
		bytesField(2, entry(varintField(1, 1), bytesField(2, []byte("controller")))),
		bytesField(2, entry(varintField(1, 2), bytesField(2, []byte("/cart")))),
	)
}

type node struct {
	Name     string  `json:"name"`
	Total    int64   `json:"total"`
	Children []*node `json:"children"`
}

// chain returns the total of the nodes reached by following names from
// parent to child anywhere in the tree, each the next's direct caller.
func chain(n *node, names []string) int64 {
	var total int64
	var follow func(n *node, rest []string) int64
	follow = func(n *node, rest []string) int64 {
		if len(rest) == 0 {
			return n.Total
		}
		var sum int64
		for _, c := range n.Children {
			if c.Name == rest[0] {
				sum += follow(c, rest[1:])
			}
		}
		return sum
	}
	var walk func(n *node)
	walk = func(n *node) {
		if n.Name == names[0] {
			total += follow(n, names[1:])
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	return total
}

func flameGraph(t *testing.T, base, q string, from, until time.Time) (total int64, root *node) {
	t.Helper()
	v := url.Values{}
	v.Set("query", q)
	v.Set("from", strconv.FormatInt(from.Unix(), 10))
	v.Set("until", strconv.FormatInt(until.Unix(), 10))
	req, _ := http.NewRequest("GET", base+"/api/v1/query/flamegraph?"+v.Encode(), nil)
	code, r := do(t, req)
	if code != 200 {
		t.Fatalf("flame graph of %s: %d %s", q, code, r.Error)
	}
	var fg struct {
		Total int64 `json:"total"`
		Root  *node `json:"root"`
	}
	if err := json.Unmarshal(r.Data, &fg); err != nil {
		t.Fatal(err)
	}
	return fg.Total, fg.Root
}

func TestIngestJFR(t *testing.T) {
	ts := newAPI(t)
	plain, want := readDemo(t)
	from := time.Unix(1_700_000_000, 0)
	until := from.Add(10 * time.Second)
	ct, body := multipartBody(t, plain, labelsSnapshot(), true)
	uploads := []struct {
		service     string
		contentType string
		body        []byte
	}{
		{"demo.raw", "application/octet-stream", plain},
		{"demo.multipart", ct, body.Bytes()},
	}
	for _, u := range uploads {
		req, _ := http.NewRequest("POST", uploadURL(ts.URL, u.service+"{env=test}", from, until), bytes.NewReader(u.body))
		req.Header.Set("Content-Type", u.contentType)
		if code, r := do(t, req); code != 200 || r.Status != "success" {
			t.Fatalf("upload %s: %d %s: %s", u.service, code, r.ErrorType, r.Error)
		}
	}
	const period = int64(1e9 / 100)
	for _, u := range uploads {
		sel := fmt.Sprintf(`{service_name=%q, env="test"}`, u.service)
		for _, c := range []struct {
			typ   string
			total int64
			path  []string
			onIt  int64
		}{
			{"process_cpu:cpu:nanoseconds:cpu:nanoseconds", want["cpu.samples"] * period,
				[]string{"HearthJfrDemo.cpuMain", "HearthJfrDemo.burnOuter", "HearthJfrDemo.burnMiddle", "HearthJfrDemo.burnLeaf"},
				want["cpu.samples.burnLeaf"] * period},
			{"memory:alloc_sample_bytes:bytes:space:bytes", want["alloc.weight"],
				[]string{"HearthJfrDemo.allocMain", "HearthJfrDemo.allocOuter", "HearthJfrDemo.allocLeaf"},
				want["alloc.weight.allocLeaf"]},
			{"mutex:contentions:count:mutex:count", want["monitor.events"],
				[]string{"HearthJfrDemo.lockMain", "HearthJfrDemo.lockedWork"}, want["monitor.events.lockedWork"]},
			{"block:delay:nanoseconds:block:count", want["park.nanos"],
				[]string{"HearthJfrDemo.parkMain", "HearthJfrDemo.parkLeaf"}, want["park.nanos"]},
		} {
			total, root := flameGraph(t, ts.URL, c.typ+sel, from.Add(-time.Minute), until.Add(time.Minute))
			if total != c.total {
				t.Errorf("%s %s: total %d, the JDK's reader finds %d", u.service, c.typ, total, c.total)
			}
			if got := chain(root, c.path); got != c.onIt || got == 0 {
				t.Errorf("%s %s: %d under %s, the JDK's reader finds %d", u.service, c.typ, got, strings.Join(c.path, " > "), c.onIt)
			}
		}
	}
	// Every type of the recording, under the name's service and labels.
	v := url.Values{"query": {`{service_name="demo.multipart"}`}, "from": {"0"}, "until": {"now"}}
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/profile_types?"+v.Encode(), nil)
	code, r := do(t, req)
	var types []string
	if code != 200 || json.Unmarshal(r.Data, &types) != nil {
		t.Fatalf("profile types: %d %s", code, r.Error)
	}
	wantTypes := []string{
		"block:contentions:count:block:count", "block:delay:nanoseconds:block:count",
		"memory:alloc_sample_bytes:bytes:space:bytes", "memory:alloc_sample_objects:count:space:bytes",
		"mutex:contentions:count:mutex:count", "mutex:delay:nanoseconds:mutex:count",
		"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
	}
	slices.Sort(types)
	if !slices.Equal(types, wantTypes) {
		t.Errorf("profile types %v, want %v", types, wantTypes)
	}
}

func TestIngestJFRErrors(t *testing.T) {
	ts := newAPI(t)
	plain, _ := readDemo(t)
	now := time.Now()
	noJFR := func() (string, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		w, _ := mw.CreateFormFile("labels", "labels")
		w.Write(labelsSnapshot())
		mw.Close()
		return mw.FormDataContentType(), body.Bytes()
	}
	noJFRType, noJFRBody := noJFR()
	badLabelsType, badLabels := multipartBody(t, plain, []byte{0x0a, 0xff, 0x01}, false)
	for _, c := range []struct {
		name, format, contentType string
		body                      []byte
		status                    int
		msg                       string
	}{
		{"not a recording", "jfr", "application/octet-stream", []byte("hello"), 400, "jfr: chunk at byte 0"},
		{"empty body", "jfr", "application/octet-stream", nil, 400, "no recording"},
		{"multipart without jfr", "jfr", noJFRType, noJFRBody, 400, "no recording"},
		{"malformed labels", "jfr", badLabelsType, badLabels.Bytes(), 400, "jfr labels"},
		{"trie is still unsupported", "trie", "application/octet-stream", []byte("x"), 415, "not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := strings.Replace(uploadURL(ts.URL, "demo.err", now, now), "format=jfr", "format="+c.format, 1)
			req, _ := http.NewRequest("POST", u, bytes.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			code, r := do(t, req)
			if code != c.status || !strings.Contains(r.Error, c.msg) {
				t.Errorf("%d %q, want %d containing %q", code, r.Error, c.status, c.msg)
			}
		})
	}
}

// TestIngestJFRPartlyRefused stores the profiles of a recording that pass
// the ingest limits, and names the others in a 413.
func TestIngestJFRPartlyRefused(t *testing.T) {
	plain, _ := readDemo(t)
	rs, err := jfr.Requests(&ingest.Request{Name: "x", From: 1, SampleRate: 100}, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A sample limit that only the largest profile is over.
	largest, most := "", 0
	for _, r := range rs {
		if n := len(r.Parsed.Sample); n > most {
			largest, most = r.NameKind, n
		}
	}
	s := profiletest.OpenStore(t)
	ing := ingest.New(s.DB, ingest.ProfileLimits{MaxSamples: most - 1}, nil)
	a := api.New(ing, query.NewEngine(s.DB), api.Options{}, nil)
	mux := http.NewServeMux()
	a.Register(mux)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	now := time.Now()
	req, _ := http.NewRequest("POST", uploadURL(ts.URL, "demo.limits", now, now), bytes.NewReader(plain))
	code, r := do(t, req)
	want := fmt.Sprintf("jfr: 1 of %d profiles refused (the others were stored): %s {}: ", len(rs), largest)
	if code != http.StatusRequestEntityTooLarge || !strings.HasPrefix(r.Error, want) {
		t.Fatalf("%d %q, want 413 starting with %q", code, r.Error, want)
	}
	names, err := s.DB.LabelValues(context.Background(), "anonymous", "__profile_type__", 0, math.MaxInt64, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, n := range names {
		k, _, _ := strings.Cut(n, ":")
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != len(rs)-1 || slices.Contains(kinds, largest) {
		t.Errorf("stored kinds %v; want all of the recording's but %s", kinds, largest)
	}
}
