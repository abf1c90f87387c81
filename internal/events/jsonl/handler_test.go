package jsonl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/eventstest"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/storage"
)

type testServer struct {
	rec   *eventstest.Recorder
	tally *events.Tally
	url   string
}

func newTestServer(t *testing.T, adm ingest.Admitter, opts HandlerOptions) *testServer {
	t.Helper()
	rec := &eventstest.Recorder{}
	opts.Tally = &events.Tally{}
	h := NewHandler(rec, adm, opts)
	h.now = func() time.Time { return now }
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{rec: rec, tally: opts.Tally, url: srv.URL}
}

func (s *testServer) post(t *testing.T, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func answer(t *testing.T, b []byte) Answer {
	t.Helper()
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return a
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const twoGoodOneBad = `{"time":"2026-11-01T12:00:00Z","name":"checkout","service.name":"shop","duration_ms":412,"user.id":"u-7"}
{"name":"cron run","error":"exit status 1"}
{"time":"not a time"}
`

func TestHandler(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			s := newTestServer(t, nil, HandlerOptions{})
			body := []byte(twoGoodOneBad)
			headers := []string{"X-Scope-OrgID", "team-a"}
			if gz {
				body = gzipped(t, body)
				headers = append(headers, "Content-Encoding", "gzip")
			}
			resp, b := s.post(t, body, headers...)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			a := answer(t, b)
			if a.Accepted != 2 || a.RefusedCount != 1 || len(a.Refused) != 1 || a.Refused[0].Line != 3 || !strings.Contains(a.Refused[0].Error, `time: "not a time"`) {
				t.Errorf("answer %s", b)
			}
			got := s.rec.Events("team-a")
			if len(got) != 2 {
				t.Fatalf("stored %+v", got)
			}
			if e := got[0]; e.Name != "checkout" || e.Service != "shop" || e.Duration != 412e6 || e.Start != now.UnixNano() {
				t.Errorf("first event %+v", e)
			}
			if e := got[1]; e.Status != events.StatusError || e.StatusMessage != "exit status 1" || e.Start != now.UnixNano() {
				t.Errorf("second event %+v, want an error at the time the request arrived", e)
			}
			if c := s.tally.Counts(); c.Stored != 2 || c.Refused != 1 {
				t.Errorf("tally %+v", c)
			}
		})
	}
}

func TestHandlerArray(t *testing.T) {
	s := newTestServer(t, nil, HandlerOptions{})
	resp, b := s.post(t, []byte(`[{"name":"a"},{"name":"b"},"c"]`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	want := `{"accepted":2,"refused_count":1,"refused":[{"index":2,"error":"not a JSON object: each line must be one object"}]}` + "\n"
	if string(b) != want {
		t.Errorf("answer\n%s\nwant\n%s", b, want)
	}
}

func TestHandlerEverythingRefused(t *testing.T) {
	s := newTestServer(t, nil, HandlerOptions{})
	resp, b := s.post(t, []byte("nope\n[]\n"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	a := answer(t, b)
	if a.Accepted != 0 || a.RefusedCount != 2 || !strings.HasPrefix(a.Error, "every event was refused; line 1: invalid character") {
		t.Errorf("answer %s", b)
	}
	if s.rec.Calls() != 0 {
		t.Errorf("storage called with nothing to store")
	}
}

func TestHandlerListsFirstRefusals(t *testing.T) {
	s := newTestServer(t, nil, HandlerOptions{})
	body := `{"name":"ok"}` + "\n" + strings.Repeat("x\n", 150)
	resp, b := s.post(t, []byte(body))
	a := answer(t, b)
	if resp.StatusCode != http.StatusOK || a.RefusedCount != 150 || len(a.Refused) != 100 || a.Refused[99].Line != 101 {
		t.Errorf("status %d, refused_count %d, %d listed", resp.StatusCode, a.RefusedCount, len(a.Refused))
	}
}

func TestHandlerWarnsOfCuts(t *testing.T) {
	s := newTestServer(t, nil, HandlerOptions{Decode: Options{Limits: events.Limits{MaxAttributes: 1, MaxValueBytes: 3}}})
	resp, b := s.post(t, []byte(`{"a":"long","b":2}`))
	a := answer(t, b)
	want := []string{
		"1 attributes dropped over the limit of 1 per event (--events.max-attributes)",
		"1 values cut to the limit of 3 bytes (--events.max-value-bytes)",
	}
	if resp.StatusCode != http.StatusOK || a.AttributesDropped != 1 || a.ValuesCut != 1 || !slices.Equal(a.Warnings, want) {
		t.Errorf("status %d, answer %s", resp.StatusCode, b)
	}
	if c := s.tally.Counts(); c.AttributesDropped != 1 || c.ValuesCut != 1 {
		t.Errorf("tally %+v", c)
	}
}

func TestHandlerRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    HandlerOptions
		body    string
		headers []string
		status  int
		typ     string
		msg     string
	}{
		{name: "empty", body: "\n\n", status: 400, typ: "bad_data", msg: "the body holds no events"},
		{name: "broken array", body: `[{"a":1}`, status: 400, typ: "bad_data", msg: "JSON array"},
		{name: "bad tenant", body: `{}`, headers: []string{"X-Scope-OrgID", ".."}, status: 400, typ: "bad_data", msg: "invalid tenant ID"},
		{name: "too many", opts: HandlerOptions{Decode: Options{Limits: events.Limits{MaxPerRequest: 1}}}, body: "{}\n{}", status: 413, typ: "too_large",
			msg: "the body holds 2 events or more, over the limit of 1 per request (--events.max-per-request)"},
		{name: "over the body limit", opts: HandlerOptions{MaxBodyBytes: 10}, body: `{"name":"eleven+"}`, status: 413, typ: "too_large", msg: "over the limit of 10"},
		{name: "wrong type", body: `{}`, headers: []string{"Content-Type", "application/xml"}, status: 415, typ: "unsupported", msg: `unsupported Content-Type "application/xml"`},
		{name: "wrong encoding", body: `{}`, headers: []string{"Content-Encoding", "zstd"}, status: 415, typ: "unsupported", msg: `unsupported Content-Encoding "zstd"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, nil, tc.opts)
			resp, b := s.post(t, []byte(tc.body), tc.headers...)
			var e errorAnswer
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("answer %q: %v", b, err)
			}
			if resp.StatusCode != tc.status || e.Status != "error" || e.ErrorType != tc.typ || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("status %d, answer %s; want %d %s %q", resp.StatusCode, b, tc.status, tc.typ, tc.msg)
			}
			if s.rec.Calls() != 0 {
				t.Errorf("storage called for a refused request")
			}
		})
	}
}

func TestHandlerMethod(t *testing.T) {
	s := newTestServer(t, nil, HandlerOptions{})
	resp, err := http.Get(s.url + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestHandlerStorageUnavailable(t *testing.T) {
	s := newTestServer(t, nil, HandlerOptions{})
	s.rec.Err = fmt.Errorf("%w: log write: disk full", storage.ErrUnavailable)
	resp, b := s.post(t, []byte(twoGoodOneBad))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || !strings.Contains(string(b), "events not stored, retry later") {
		t.Errorf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if c := s.tally.Counts(); c.Failed != 2 || c.Stored != 0 {
		t.Errorf("tally %+v", c)
	}
}

func TestHandlerRateLimit(t *testing.T) {
	body := []byte(twoGoodOneBad)
	lim := limits.Defaults()
	lim.IngestRateBytes = 1
	lim.IngestBurstBytes = int64(len(body)) + 10
	ing := ingest.New(nil, ingest.ProfileLimits{}, nil)
	ing.UseLimits(limits.NewOverrides(lim), nil)
	s := newTestServer(t, ing, HandlerOptions{})
	if resp, b := s.post(t, body); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d %s", resp.StatusCode, b)
	}
	resp, b := s.post(t, body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "over its ingest rate") {
		t.Errorf("second: status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}
