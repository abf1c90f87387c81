package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	gpprof "github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// send posts body to base+path as tenant and returns the status, the
// Retry-After header and the decoded answer.
func send(t *testing.T, base, path, tenant string, body []byte) (int, string, apiResponse) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r apiResponse
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
			t.Fatalf("POST %s: %v: %s", path, err, buf.Bytes())
		}
	} else {
		r.Error = buf.String()
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), r
}

// folded is /ingest of a one-series folded CPU profile of app.
func folded(t *testing.T, base, tenant, app string) (int, apiResponse) {
	t.Helper()
	code, _, r := send(t, base, "/ingest?name="+app+".cpu&format=folded&from=now-1m", tenant, []byte("main;work 3\nmain;idle 1\n"))
	return code, r
}

// servicesOf lists the service_name values tenant has stored.
func servicesOf(t *testing.T, base, tenant string) []string {
	t.Helper()
	// From 2023: pushed and OTLP profiles keep the time they record.
	q := url.Values{"from": {"1700000000"}, "until": {"now"}}
	code, r := call(t, "GET", base+"/api/v1/label/service_name/values?"+q.Encode(), nil, map[string]string{"X-Scope-OrgID": tenant})
	if code != 200 {
		t.Fatalf("label values of %s: %d %s", tenant, code, r.Error)
	}
	var vs []string
	if err := json.Unmarshal(r.Data, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// refusedByLimit reads hearth_limits_refused_total{tenant, limit}.
func refusedByLimit(t *testing.T, base, tenant, limit string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f := fams["hearth_limits_refused_total"]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		var ten, lim string
		for _, l := range m.Label {
			switch l.GetName() {
			case "tenant":
				ten = l.GetValue()
			case "limit":
				lim = l.GetValue()
			}
		}
		if ten == tenant && lim == limit {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func writeConfig(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

func reload(t *testing.T, base string) (int, string) {
	t.Helper()
	code, _, r := send(t, base, "/-/reload", "", nil)
	return code, r.Error
}

// TestTenantSeriesLimit: past its tenant's series limit, a profile that
// would add a series is refused with 400 series_limit naming the limit,
// while profiles of the series already held are stored and what was
// stored stays; overrides in the configuration file give a tenant its own
// limits, a reload applies a change, and a wrong file keeps the limits in
// force. Refusals are counted by tenant and limit.
func TestTenantSeriesLimit(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "hearth.yaml")
	writeConfig(t, cfgFile, `
limits:
  max_series_per_tenant: 2
  overrides:
    big: {max_series_per_tenant: 10}
`)
	cfg := server.DefaultConfig()
	cfg.ConfigFile = cfgFile
	base := serve(t, cfg)

	for _, app := range []string{"a", "b"} {
		if code, r := folded(t, base, "anonymous", app); code != 200 {
			t.Fatalf("%s: %d %s", app, code, r.Error)
		}
	}
	code, r := folded(t, base, "anonymous", "c")
	if code != 400 || r.ErrorType != "series_limit" || !strings.Contains(r.Error, "past the limit of 2 (max_series_per_tenant, --limits.max-series-per-tenant)") {
		t.Fatalf("c past the limit: %d %s %q; want 400 series_limit naming the limit", code, r.ErrorType, r.Error)
	}
	if code, r := folded(t, base, "anonymous", "a"); code != 200 {
		t.Fatalf("a again, a series held: %d %s", code, r.Error)
	}
	for _, app := range []string{"c", "d", "e"} {
		if code, r := folded(t, base, "big", app); code != 200 {
			t.Fatalf("tenant big, %s: %d %s", app, code, r.Error)
		}
	}
	if got := servicesOf(t, base, "anonymous"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("services kept = %v, want [a b]", got)
	}
	if n := refusedByLimit(t, base, "anonymous", "max_series_per_tenant"); n != 1 {
		t.Errorf("hearth_limits_refused_total{tenant=anonymous,limit=max_series_per_tenant} = %v, want 1", n)
	}

	// A wrong file: 400 with the cause, and the limits stay.
	writeConfig(t, cfgFile, "limits:\n  max_series_per_tenant: 5\n  max_sereis: 1\n")
	if code, msg := reload(t, base); code != 400 || !strings.Contains(msg, `unknown field "max_sereis" in limits`) {
		t.Fatalf("reload of a wrong file: %d %q", code, msg)
	}
	if code, _ := folded(t, base, "anonymous", "c"); code != 400 {
		t.Fatalf("after a failed reload, c: %d; want the old limit's 400", code)
	}
	writeConfig(t, cfgFile, "limits:\n  max_series_per_tenant: 5\n  overrides: {anonymous: {query_max_series: 1}}\n")
	if code, msg := reload(t, base); code != 200 {
		t.Fatalf("reload: %d %s", code, msg)
	}
	if code, r := folded(t, base, "anonymous", "c"); code != 200 {
		t.Fatalf("after raising the limit, c: %d %s", code, r.Error)
	}
	// The same reload gave the tenant a query limit.
	q := url.Values{"query": {"cpu{}"}, "from": {"now-1h"}, "until": {"now"}}
	code, r = call(t, "GET", base+"/api/v1/query/flamegraph?"+q.Encode(), nil, nil)
	if code != 422 || r.ErrorType != "limit" || !strings.Contains(r.Error, "(query_max_series, --limits.query-max-series)") {
		t.Errorf("a query over the overridden series limit: %d %s %q", code, r.ErrorType, r.Error)
	}
	code, _ = call(t, "GET", base+"/api/v1/query/flamegraph?"+q.Encode(), nil, map[string]string{"X-Scope-OrgID": "big"})
	if code != 200 {
		t.Errorf("tenant big's query: %d", code)
	}
	if n := refusedByLimit(t, base, "anonymous", "query_max_series"); n != 1 {
		t.Errorf("query refusals = %v, want 1", n)
	}
}

// TestIngestRateEveryWayIn: a tenant over its ingest rate is refused on
// every way in as "too many requests", with the wait its bucket needs
// (Retry-After; RetryInfo on gRPC), while what it sent before is kept and
// other tenants are not slowed.
func TestIngestRateEveryWayIn(t *testing.T) {
	cpu, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	otlpBody, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	otlpReq := pprofileotlp.NewExportRequest()
	if err := otlpReq.UnmarshalProto(otlpBody); err != nil {
		t.Fatal(err)
	}
	var sizer pprofile.ProtoMarshaler
	grpcSize := sizer.ProfilesSize(otlpReq.Profiles())
	pushMsg := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "pushed"}},
		Samples: []*pushv1.RawSample{{RawProfile: cpu}},
	}}}
	pushSize := proto.Size(pushMsg)

	// Each way in under its own tenant, whose burst holds one request and
	// a half; at 1 byte/s, the second request waits for the missing half.
	sizes := map[string]int{"ingest": len(cpu), "otlp-http": len(otlpBody), "otlp-grpc": grpcSize, "push": pushSize}
	var yaml strings.Builder
	yaml.WriteString("limits:\n  ingest_rate_bytes: 1\n  overrides:\n")
	for tenant, n := range sizes {
		fmt.Fprintf(&yaml, "    %s: {ingest_burst_bytes: %d}\n", tenant, n*3/2)
	}
	cfgFile := filepath.Join(t.TempDir(), "hearth.yaml")
	writeConfig(t, cfgFile, yaml.String())
	cfg := server.DefaultConfig()
	cfg.ConfigFile = cfgFile
	base := serve(t, cfg)
	// The wait the second request is told: what the bucket lacks, at 1
	// byte/s, give or take the seconds the test takes.
	checkWait := func(way string, secs int) {
		t.Helper()
		n := sizes[way]
		want := n - (n*3/2 - n)
		if secs > want || secs < want-30 {
			t.Errorf("%s: told to wait %ds, want about %ds", way, secs, want)
		}
	}

	// /ingest.
	path := "/ingest?name=svc.cpu&format=pprof&from=now-1m"
	if code, _, r := send(t, base, path, "ingest", cpu); code != 200 {
		t.Fatalf("/ingest: %d %s", code, r.Error)
	}
	code, retry, r := send(t, base, path, "ingest", cpu)
	if code != 429 || r.ErrorType != "rate_limited" || !strings.Contains(r.Error, "(ingest_rate_bytes, --limits.ingest-rate-bytes)") {
		t.Fatalf("/ingest over the rate: %d %s %q; want 429 rate_limited naming the limit", code, r.ErrorType, r.Error)
	}
	secs, _ := strconv.Atoi(retry)
	checkWait("ingest", secs)

	// OTLP over HTTP.
	for i, want := range []int{200, 429} {
		req, _ := http.NewRequest("POST", base+"/v1development/profiles", bytes.NewReader(otlpBody))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Scope-OrgID", "otlp-http")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("OTLP/HTTP request %d: %s, want %d", i, resp.Status, want)
		}
		if want == 429 {
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			checkWait("otlp-http", secs)
		}
	}

	// OTLP over gRPC, on the main port.
	conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gctx := metadataTenant(context.Background(), "otlp-grpc")
	client := pprofileotlp.NewGRPCClient(conn)
	if _, err := client.Export(gctx, otlpReq); err != nil {
		t.Fatalf("OTLP/gRPC: %v", err)
	}
	_, err = client.Export(gctx, otlpReq)
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("OTLP/gRPC over the rate: %v, want ResourceExhausted", err)
	}
	var wait int
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			wait = int(ri.GetRetryDelay().AsDuration().Seconds())
		}
	}
	checkWait("otlp-grpc", wait+1)

	// push.v1 over Connect.
	pusher := pushv1connect.NewPusherServiceClient(http.DefaultClient, base)
	pushAs := func() error {
		req := connect.NewRequest(pushMsg)
		req.Header().Set("X-Scope-OrgID", "push")
		_, err := pusher.Push(context.Background(), req)
		return err
	}
	if err := pushAs(); err != nil {
		t.Fatalf("push: %v", err)
	}
	err = pushAs()
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeResourceExhausted {
		t.Fatalf("push over the rate: %v, want resource_exhausted", err)
	}
	secs, _ = strconv.Atoi(cerr.Meta().Get("Retry-After"))
	checkWait("push", secs)

	// A tenant with the flags' burst is not slowed by the others.
	if code, _, r := send(t, base, path, "fresh", cpu); code != 200 {
		t.Errorf("another tenant: %d %s", code, r.Error)
	}
	// What each tenant sent first is kept.
	for tenant, want := range map[string][]string{"ingest": {"svc"}, "otlp-http": {"checkout", "inventory"}, "otlp-grpc": {"checkout", "inventory"}, "push": {"pushed"}} {
		if got := servicesOf(t, base, tenant); !slices.Equal(got, want) {
			t.Errorf("tenant %s kept %v, want %v", tenant, got, want)
		}
		if n := refusedByLimit(t, base, tenant, "ingest_rate_bytes"); n != 1 {
			t.Errorf("tenant %s: %v rate refusals counted, want 1", tenant, n)
		}
	}
}

// TestSampleLabelLength: a per-sample label over the tenant's value limit
// gets 413 naming the label, as a series label does; one within it is
// stored and can be selected.
func TestSampleLabelLength(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Limits.MaxLabelValueLength = 32
	base := serve(t, cfg)
	profileWith := func(span string) []byte {
		fn := &gpprof.Function{ID: 1, Name: "main.handle"}
		loc := &gpprof.Location{ID: 1, Line: []gpprof.Line{{Function: fn}}}
		p := &gpprof.Profile{
			SampleType: []*gpprof.ValueType{{Type: "cpu", Unit: "nanoseconds"}}, PeriodType: &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"},
			Function: []*gpprof.Function{fn}, Location: []*gpprof.Location{loc},
			Sample: []*gpprof.Sample{{Location: []*gpprof.Location{loc}, Value: []int64{10}, Label: map[string][]string{"span_name": {span}}}},
		}
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	path := "/ingest?name=svc.cpu&format=pprof&from=now-1m"
	code, _, r := send(t, base, path, "", profileWith(strings.Repeat("x", 33)))
	if code != 413 || r.ErrorType != "too_large" || !strings.Contains(r.Error, `sample label "span_name": a value of 33 bytes is over the limit of 32 (max_label_value_length, --limits.max-label-value-length)`) {
		t.Fatalf("a 33-byte sample label: %d %s %q", code, r.ErrorType, r.Error)
	}
	if code, _, r := send(t, base, path, "", profileWith("GET /checkout")); code != 200 {
		t.Fatalf("a short sample label: %d %s", code, r.Error)
	}
	q := url.Values{"query": {`cpu{span_name="GET /checkout"}`}, "from": {"now-1h"}, "until": {"now"}}
	fg := get[flameGraph](t, base, "/api/v1/query/flamegraph", q)
	if fg.Total != 10 {
		t.Errorf("flame graph of the stored span: total %d, want 10", fg.Total)
	}
	if n := refusedByLimit(t, base, "anonymous", "max_label_value_length"); n != 1 {
		t.Errorf("label refusals = %v, want 1", n)
	}
}

// TestTenantRetention: the retention: key of a tenant's overrides
// replaces --retention for it: its profiles of two days ago go at the
// next compaction round, another tenant's stay.
func TestTenantRetention(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "hearth.yaml")
	writeConfig(t, cfgFile, "limits:\n  overrides:\n    short: {retention: 1d}\n")
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SelfProfileInterval = 0
	cfg.SelfEvents = false
	cfg.ConfigFile = cfgFile
	s, err := server.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, tenant := range []string{"short", "long"} {
		if code, _, r := send(t, ts.URL, "/ingest?name=app.cpu&format=folded&from=now-2d", tenant, []byte("main;work 3\n")); code != 200 {
			t.Fatalf("ingest for %s: %d %s", tenant, code, r.Error)
		}
	}
	ctx := context.Background()
	if err := s.DB().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if got := servicesOf(t, ts.URL, "short"); len(got) != 0 {
		t.Errorf("tenant short (retention 1d) still holds %v", got)
	}
	if got := servicesOf(t, ts.URL, "long"); !slices.Equal(got, []string{"app"}) {
		t.Errorf("tenant long (--retention 30d) holds %v, want [app]", got)
	}
}
