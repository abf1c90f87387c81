package otlp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pprofile"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/query"
)

// checkExampleStored checks that eng holds exactly what exampleProfiles
// stores, in tenant ten: stacks, totals, series labels, and the
// per-sample labels that links and sample attributes became.
func checkExampleStored(t *testing.T, eng *query.Engine, ten string) {
	t.Helper()
	req := func(q string) query.Request {
		r := request(q)
		r.Tenant = ten
		return r
	}
	for q, want := range exampleStacks {
		got, total := flameStacks(t, eng, req(q))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: stacks differ (-want +got):\n%s", q, diff)
		}
		var sum int64
		for _, v := range want {
			sum += v
		}
		if total != sum {
			t.Errorf("%s: total %d, want %d", q, total, sum)
		}
	}
	top := topTable(t, eng, req(`cpu{service_name="checkout"}`))
	wantTop := map[string][2]int64{
		"main.main":             {0, 100_000_000},
		"main.handle":           {0, 80_000_000},
		"encoding/json.Marshal": {0, 80_000_000},
		"strconv.Itoa":          {80_000_000, 80_000_000},
		"main.idle":             {20_000_000, 20_000_000},
	}
	if diff := cmp.Diff(wantTop, top); diff != "" {
		t.Errorf("top table differs (-want +got):\n%s", diff)
	}

	// Series labels: resource and scope attributes, names made valid.
	ls := seriesLabels(t, eng, req(`cpu{service_name="checkout"}`))
	wantLabels := []map[string]string{{
		"__profile_type__":            "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
		"service_name":                "checkout",
		"deployment_environment_name": "prod",
		"host_cpu_count":              "8",
		"process_runtime_name":        "go",
		"profiler_mode":               "sampling",
		"otel_scope_name":             exampleScope,
	}}
	if diff := cmp.Diff(wantLabels, ls); diff != "" {
		t.Errorf("series labels differ (-want +got):\n%s", diff)
	}

	// Links and sample attributes are per-sample labels: a matcher on
	// them selects samples, not series.
	hot := "main.main;main.handle;encoding/json.Marshal;strconv.Itoa"
	for _, tc := range []struct {
		q    string
		want map[string]int64
	}{
		{fmt.Sprintf(`cpu{service_name="checkout", trace_id="%s"}`, traceA), map[string]int64{hot: 70_000_000}},
		{fmt.Sprintf(`cpu{span_id="%s"}`, spanA), map[string]int64{hot: 70_000_000}},
		{fmt.Sprintf(`cpu{trace_id="%s", span_id="%s"}`, traceB, spanB), map[string]int64{hot: 10_000_000}},
		{`cpu{thread_name="idle"}`, map[string]int64{"main.main;main.idle": 20_000_000}},
		{`cpu{thread_name=~"worker-.*"}`, map[string]int64{hot: 70_000_000}},
	} {
		got, _ := flameStacks(t, eng, req(tc.q))
		if diff := cmp.Diff(tc.want, map[string]int64(got)); diff != "" {
			t.Errorf("%s: stacks differ (-want +got):\n%s", tc.q, diff)
		}
	}
	all := seriesLabels(t, eng, req("{}"))
	if len(all) != 2 {
		t.Errorf("%d series, want 2 (one per service and type): %v", len(all), all)
	}
	for _, l := range all {
		for _, name := range []string{"trace_id", "span_id", "thread_name"} {
			if _, ok := l[name]; ok {
				t.Errorf("per-sample label %s became a series label: %v", name, l)
			}
		}
	}
}

// TestExportHTTP exports the example as OTLP/HTTP exporters do, in each
// encoding, gzipped or not, and reads back what was stored.
func TestExportHTTP(t *testing.T) {
	for _, json := range []bool{false, true} {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("json=%v,gzip=%v", json, gz), func(t *testing.T) {
				t.Parallel()
				s := newTestServer(t, Options{})
				resp := exportHTTP(t, s.url, exampleProfiles(), json, gz)
				if ps := resp.PartialSuccess(); ps.RejectedProfiles() != 0 || ps.ErrorMessage() != "" {
					t.Errorf("partial success: %d rejected: %s", ps.RejectedProfiles(), ps.ErrorMessage())
				}
				checkExampleStored(t, s.eng, "anonymous")
			})
		}
	}
}

// TestExportHTTPPathsAndTenant posts to the stable path with a tenant: the
// data lands in that tenant only.
func TestExportHTTPPathsAndTenant(t *testing.T) {
	s := newTestServer(t, Options{})
	h := http.Header{"X-Scope-OrgID": {"team-a"}, VersionHeader: {"1"}}
	status, _, body := post(t, s.url+"/v1/profiles", contentProtobuf, h, encodeExport(t, exampleProfiles(), false))
	if status != http.StatusOK {
		t.Fatalf("status %d: %q", status, body)
	}
	checkExampleStored(t, s.eng, "team-a")
	if types, err := s.eng.ProfileTypes(context.Background(), request("{}")); err != nil || len(types) != 0 {
		t.Errorf("tenant anonymous has profile types %v (err %v), want none", types, err)
	}
}

// statusMessage decodes an error body, a google.rpc.Status in the
// request's encoding.
func statusMessage(t *testing.T, ct string, body []byte) *spb.Status {
	t.Helper()
	st := &spb.Status{}
	var err error
	if ct == contentJSON {
		err = protojson.Unmarshal(body, st)
	} else {
		err = proto.Unmarshal(body, st)
	}
	if err != nil {
		t.Fatalf("error body %q is not a google.rpc.Status: %v", body, err)
	}
	return st
}

// badStringIndex returns the example with its second profile's sample type
// pointing past the string table.
func badStringIndex() pprofile.Profiles {
	pd := exampleProfiles()
	ps := pd.ResourceProfiles().At(1).ScopeProfiles().At(0).Profiles()
	inventory := pprofile.NewProfile()
	ps.At(0).CopyTo(inventory)
	pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).CopyTo(ps.At(0))
	ps.At(0).SampleType().SetTypeStrindex(int32(pd.Dictionary().StringTable().Len() + 100))
	inventory.CopyTo(ps.AppendEmpty())
	return pd
}

// manyLabels returns the example with 70 more attributes on the inventory
// service's resource.
func manyLabels() pprofile.Profiles {
	pd := exampleProfiles()
	attrs := pd.ResourceProfiles().At(1).Resource().Attributes()
	for i := range 70 {
		attrs.PutStr(fmt.Sprintf("custom.attr%d", i), "x")
	}
	return pd
}

// TestExportHTTPBadInput checks each refusal: its status, its message, and
// that nothing of a refused request was stored.
func TestExportHTTPBadInput(t *testing.T) {
	example := encodeExport(t, exampleProfiles(), false)
	bomb := gzipBytes(t, bytes.Repeat([]byte{0}, 8<<10))
	for _, tc := range []struct {
		name    string
		method  string
		ct      string
		header  http.Header
		body    []byte
		status  int
		code    codes.Code // of the google.rpc.Status body, for 4xx with an encoding
		msg     string     // in the message
		stored  bool       // whether anything is stored
		maxBody int64      // Options.MaxBodyBytes
		maxDec  int64      // Options.MaxDecompressedBytes
		chunked bool       // send without Content-Length
		checkFn func(t *testing.T, s *testServer, body []byte)
	}{
		{name: "garbage protobuf", ct: contentProtobuf, body: []byte("\xff\xff\xff\xff not protobuf"), status: 400, code: codes.InvalidArgument, msg: "decode OTLP ExportProfilesServiceRequest"},
		{name: "garbage JSON", ct: contentJSON, body: []byte(`{"resourceProfiles": [{"scopeProfiles": 7`), status: 400, code: codes.InvalidArgument, msg: "decode OTLP ExportProfilesServiceRequest"},
		{name: "truncated protobuf", ct: contentProtobuf, body: example[:len(example)/2], status: 400, code: codes.InvalidArgument, msg: "decode"},
		{name: "wrong content type", ct: "text/plain", body: example, status: 415, msg: "unsupported Content-Type"},
		{name: "GET", method: http.MethodGet, ct: contentProtobuf, status: 405, msg: "not allowed"},
		{name: "body over the limit", ct: contentProtobuf, body: bytes.Repeat([]byte{0}, 4<<10), maxBody: 2 << 10, status: 413, code: codes.ResourceExhausted, msg: "over the limit"},
		{name: "chunked body over the limit", ct: contentProtobuf, body: bytes.Repeat([]byte{0}, 4<<10), maxBody: 2 << 10, chunked: true, status: 413, code: codes.ResourceExhausted, msg: "over the limit"},
		{name: "gzip over the limit once decompressed", ct: contentProtobuf, header: http.Header{"Content-Encoding": {"gzip"}}, body: bomb, maxBody: 2 << 10, maxDec: 4 << 10, status: 413, code: codes.ResourceExhausted, msg: "decompresses to more than 4096 bytes, the limit that --limits.max-decompressed-bytes sets"},
		{name: "not gzip", ct: contentProtobuf, header: http.Header{"Content-Encoding": {"gzip"}}, body: example, status: 400, code: codes.InvalidArgument, msg: "request body: decompress"},
		{name: "unknown content encoding", ct: contentJSON, header: http.Header{"Content-Encoding": {"br"}}, body: []byte("{}"), status: 415, code: codes.Unimplemented, msg: "Content-Encoding"},
		{name: "unsupported development version", ct: contentProtobuf, header: http.Header{VersionHeader: {"2"}}, body: example, status: 400, code: codes.InvalidArgument, msg: "supported version is 1"},
		{name: "bad tenant", ct: contentProtobuf, header: http.Header{"X-Scope-OrgID": {"../etc"}}, body: example, status: 400, code: codes.InvalidArgument, msg: "invalid tenant"},
		{name: "empty request", ct: contentProtobuf, body: nil, status: 200},
		{name: "empty JSON request", ct: contentJSON, body: []byte(`{}`), status: 200},
		{
			// Converted, then refused by the ingester: the inventory
			// service has more attributes than a series may have labels (70 of
			// its own, service_name, k8s_pod_name and otel_scope_name).
			name: "a service over the label limit", ct: contentProtobuf,
			body: encodeExport(t, manyLabels(), false), status: 200, stored: true,
			checkFn: func(t *testing.T, s *testServer, body []byte) {
				ps := decodeResponse(t, body, false).PartialSuccess()
				want := "1 of 2 profiles refused: resource_profiles[1].scope_profiles[0].profiles[0]: name: 73 labels is over the limit of 64 (max_labels, --limits.max-labels)"
				if ps.RejectedProfiles() != 1 || ps.ErrorMessage() != want {
					t.Errorf("partial success {%d %q}, want {1 %q}", ps.RejectedProfiles(), ps.ErrorMessage(), want)
				}
				got, _ := flameStacks(t, s.eng, request(`cpu{service_name="checkout"}`))
				if diff := cmp.Diff(exampleStacks[`cpu{service_name="checkout"}`], got); diff != "" {
					t.Errorf("checkout stacks differ (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "one of three profiles with a bad string index", ct: contentJSON,
			body: encodeExport(t, badStringIndex(), true), status: 200, stored: true,
			checkFn: func(t *testing.T, s *testServer, body []byte) {
				ps := decodeResponse(t, body, true).PartialSuccess()
				if ps.RejectedProfiles() != 1 {
					t.Errorf("rejected %d profiles, want 1", ps.RejectedProfiles())
				}
				for _, want := range []string{"1 of 3 profiles refused", "resource_profiles[1].scope_profiles[0].profiles[0]", "sample type name: string index", "out of range"} {
					if !strings.Contains(ps.ErrorMessage(), want) {
						t.Errorf("partial success message %q lacks %q", ps.ErrorMessage(), want)
					}
				}
				// The two good profiles are stored whole.
				checkExampleStored(t, s.eng, "anonymous")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Options{MaxBodyBytes: tc.maxBody, MaxDecompressedBytes: tc.maxDec})
			method := cmpOr(tc.method, http.MethodPost)
			var in io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				in = io.MultiReader(in) // a reader whose length the client cannot know
			}
			req, err := http.NewRequest(method, s.url+Paths[0], in)
			if err != nil {
				t.Fatal(err)
			}
			if tc.chunked && req.ContentLength != 0 {
				t.Fatalf("request has Content-Length %d", req.ContentLength)
			}
			req.Header.Set("Content-Type", tc.ct)
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			body := buf.Bytes()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, body)
			}
			switch {
			case tc.status == 200:
				if tc.checkFn == nil {
					if ps := decodeResponse(t, body, tc.ct == contentJSON).PartialSuccess(); ps.RejectedProfiles() != 0 {
						t.Errorf("partial success %d: %s", ps.RejectedProfiles(), ps.ErrorMessage())
					}
				}
			case tc.code != 0:
				if got := resp.Header.Get("Content-Type"); got != tc.ct {
					t.Errorf("error Content-Type %q, want %q", got, tc.ct)
				}
				st := statusMessage(t, tc.ct, body)
				if codes.Code(st.Code) != tc.code || !strings.Contains(st.Message, tc.msg) {
					t.Errorf("status {%v %q}, want code %v and a message with %q", codes.Code(st.Code), st.Message, tc.code, tc.msg)
				}
			default:
				if !strings.Contains(string(body), tc.msg) {
					t.Errorf("body %q lacks %q", body, tc.msg)
				}
			}
			if tc.status == 405 && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("405 without Allow: POST")
			}
			if tc.checkFn != nil {
				tc.checkFn(t, s, body)
			}
			types, err := s.eng.ProfileTypes(context.Background(), request("{}"))
			if err != nil {
				t.Fatal(err)
			}
			if stored := len(types) > 0; stored != tc.stored {
				t.Errorf("stored profile types %v, want stored=%v", types, tc.stored)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestExportHTTPStorageFailure: when the store cannot write, the client is
// told to retry (503 with Retry-After), and told why.
func TestExportHTTPStorageFailure(t *testing.T) {
	s := newTestServer(t, Options{})
	if err := s.store.DB.Close(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, Paths[0], bytes.NewReader(encodeExport(t, exampleProfiles(), true)))
	req.Header.Set("Content-Type", contentJSON)
	NewHandler(s.store.Ing, Options{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503; body %q", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("Retry-After"); got != fmt.Sprint(RetryAfterSeconds) {
		t.Errorf("Retry-After %q, want %d", got, RetryAfterSeconds)
	}
	st := statusMessage(t, contentJSON, rec.Body.Bytes())
	if codes.Code(st.Code) != codes.Unavailable || !strings.Contains(st.Message, "wal is closed") {
		t.Errorf("status {%v %q}, want Unavailable naming the cause", codes.Code(st.Code), st.Message)
	}
}
