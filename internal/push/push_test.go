package push

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// series is one RawProfileSeries to push: label name, value pairs and raw
// profiles.
type series struct {
	labels   []string
	profiles [][]byte
}

// newPushRequest builds a PushRequest with Pyroscope's generated types, as
// Alloy does. Sample i of a series gets the ID "id-a", "id-b"...
func newPushRequest(ss ...series) *pushv1.PushRequest {
	req := &pushv1.PushRequest{}
	for _, x := range ss {
		rs := &pushv1.RawProfileSeries{}
		for i := 0; i < len(x.labels); i += 2 {
			rs.Labels = append(rs.Labels, &typesv1.LabelPair{Name: x.labels[i], Value: x.labels[i+1]})
		}
		for i, p := range x.profiles {
			rs.Samples = append(rs.Samples, &pushv1.RawSample{RawProfile: p, ID: "id-" + string(rune('a'+i))})
		}
		req.Series = append(req.Series, rs)
	}
	return req
}

// newClient is Pyroscope's generated client of push.v1.PusherService, the
// one Alloy's pyroscope.write uses.
func newClient(hc connect.HTTPClient, baseURL string, opts ...connect.ClientOption) pushv1connect.PusherServiceClient {
	return pushv1connect.NewPusherServiceClient(hc, baseURL, opts...)
}

// testLogger sends the handler's log lines to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// servers holds one store behind a plain HTTP/1.1 server (Connect) and an
// HTTP/2 TLS one (gRPC and gRPC-Web need HTTP/2).
type servers struct {
	store *profiletest.Store
	h1    *httptest.Server
	h2    *httptest.Server
}

func newServers(t *testing.T, opts ...Option) *servers {
	t.Helper()
	s := &servers{store: profiletest.OpenStore(t)}
	path, h := NewHandler(s.store.Ing, testLogger(t), opts...)
	if path != "/push.v1.PusherService/" {
		t.Fatalf("path = %q", path)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	s.h1 = httptest.NewServer(mux)
	s.h2 = httptest.NewUnstartedServer(mux)
	s.h2.EnableHTTP2 = true
	s.h2.StartTLS()
	t.Cleanup(func() {
		s.h1.Close()
		s.h2.Close()
	})
	return s
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t testing.TB, b []byte) *gpprof.Profile {
	t.Helper()
	p, err := gpprof.ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// total sums sample type i of p.
func total(p *gpprof.Profile, sampleType string) int64 {
	var n int64
	for i, st := range p.SampleType {
		if st.Type == sampleType {
			for _, s := range p.Sample {
				n += s.Value[i]
			}
		}
	}
	return n
}

// seriesPoints returns the stored series of the tenant with their points,
// by the series' labels.
func seriesPoints(t *testing.T, db *storage.DB, tenant string) map[string][]storage.Point {
	t.Helper()
	sps, err := db.SelectSeries(context.Background(), tenant, storage.SelectParams{Start: 0, End: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]storage.Point{}
	for _, sp := range sps {
		out[sp.Labels.String()] = append(out[sp.Labels.String()], sp.Points...)
	}
	return out
}

func sum(pts []storage.Point) int64 {
	var n int64
	for _, p := range pts {
		n += p.V
	}
	return n
}

func TestPushProtocols(t *testing.T) {
	s := newServers(t)
	file := testfiles.CorpusCPU(t)[0]
	raw := readFile(t, file)
	prof := parse(t, raw)
	if prof.TimeNanos == 0 {
		t.Fatalf("%s has no time", file)
	}
	for _, tc := range []struct {
		name string
		c    pushv1connect.PusherServiceClient
	}{
		{"connect-proto", newClient(s.h1.Client(), s.h1.URL)},
		{"connect-json", newClient(s.h1.Client(), s.h1.URL, connect.WithProtoJSON())},
		{"connect-proto-gzip", newClient(s.h1.Client(), s.h1.URL, connect.WithSendGzip())},
		{"grpc", newClient(s.h2.Client(), s.h2.URL, connect.WithGRPC())},
		{"grpc-web", newClient(s.h2.Client(), s.h2.URL, connect.WithGRPCWeb())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := connect.NewRequest(newPushRequest(series{
				labels: []string{
					"__name__", "process_cpu", "service_name", "svc-" + tc.name, "env", "test",
					"__session_id__", "0123456789abcdef", "__meta_kubernetes_pod_name", "p-1",
				},
				profiles: [][]byte{raw},
			}))
			req.Header().Set("X-Scope-OrgID", "team-"+tc.name)
			if _, err := tc.c.Push(context.Background(), req); err != nil {
				t.Fatalf("push: %v", err)
			}
			got := seriesPoints(t, s.store.DB, "team-"+tc.name)
			want := map[string]int64{
				`{__profile_type__="process_cpu:cpu:nanoseconds:cpu:nanoseconds", env="test", service_name="svc-` + tc.name + `"}`: total(prof, "cpu"),
				`{__profile_type__="process_cpu:samples:count:cpu:nanoseconds", env="test", service_name="svc-` + tc.name + `"}`:   total(prof, "samples"),
			}
			gotTotals := map[string]int64{}
			for k, pts := range got {
				gotTotals[k] = sum(pts)
				// The profile's own time, not the time of arrival.
				if len(pts) != 1 || pts[0].T != prof.TimeNanos {
					t.Errorf("%s: points %v, want one at %d", k, pts, prof.TimeNanos)
				}
			}
			if d := cmp.Diff(want, gotTotals); d != "" {
				t.Errorf("stored series (-want +got):\n%s", d)
			}
		})
	}
	// Nothing leaked into the default tenant.
	if got := seriesPoints(t, s.store.DB, "anonymous"); len(got) != 0 {
		t.Errorf("default tenant holds %v", got)
	}
}

// goContentionProfile records a real Go block (or mutex) profile of some
// goroutines waiting on each other.
func goContentionProfile(t *testing.T, name string) []byte {
	t.Helper()
	switch name {
	case "block":
		runtime.SetBlockProfileRate(1)
		defer runtime.SetBlockProfileRate(0)
	case "mutex":
		old := runtime.SetMutexProfileFraction(1)
		defer runtime.SetMutexProfileFraction(old)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ch
			for range 20 {
				mu.Lock()
				time.Sleep(100 * time.Microsecond)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	close(ch)
	wg.Wait()
	var buf bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPushNameGivesContentionKind(t *testing.T) {
	s := newServers(t)
	c := newClient(s.h1.Client(), s.h1.URL)
	block := goContentionProfile(t, "block")
	p := parse(t, block)
	if total(p, "contentions") == 0 {
		t.Fatal("the block profile recorded no contention")
	}
	// The same pprof, named block by one series and mutex by another:
	// pprof cannot tell them apart, __name__ does.
	_, err := c.Push(context.Background(), connect.NewRequest(newPushRequest(
		series{labels: []string{"__name__", "block", "service_name", "b", "__delta__", "false"}, profiles: [][]byte{block}},
		series{labels: []string{"__name__", "mutex", "service_name", "m", "__delta__", "false"}, profiles: [][]byte{block}},
	)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for k, pts := range seriesPoints(t, s.store.DB, "anonymous") {
		got[k] = sum(pts)
	}
	want := map[string]int64{
		`{__profile_type__="block:contentions:count:contentions:count", service_name="b"}`: total(p, "contentions"),
		`{__profile_type__="block:delay:nanoseconds:contentions:count", service_name="b"}`: total(p, "delay"),
		`{__profile_type__="mutex:contentions:count:contentions:count", service_name="m"}`: total(p, "contentions"),
		`{__profile_type__="mutex:delay:nanoseconds:contentions:count", service_name="m"}`: total(p, "delay"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored series (-want +got):\n%s", d)
	}
	// The flame graph of the block type holds the goroutines' stacks.
	eng := query.NewEngine(s.store.DB)
	fg, err := eng.FlameGraph(context.Background(), query.Request{
		Tenant: "anonymous", Query: `block:contentions:count:contentions:count{service_name="b"}`, Start: time.Unix(0, 0), End: time.Now().Add(time.Hour),
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fg.ProfileType != "block:contentions:count:contentions:count" || fg.Total != total(p, "contentions") {
		t.Errorf("flame graph of block: type %s total %d, want block contentions %d", fg.ProfileType, fg.Total, total(p, "contentions"))
	}
	if !treeHas(fg.Root, "sync.(*Mutex).Lock") {
		t.Errorf("flame graph of block has no sync.(*Mutex).Lock frame")
	}
}

// TestPushNameNamesTheType pushes a profile under a client's own
// __name__, as Pyroscope's canary does: its type ID starts with that name,
// which is the ID the client then queries.
func TestPushNameNamesTheType(t *testing.T) {
	s := newServers(t)
	c := newClient(s.h1.Client(), s.h1.URL)
	fn := &gpprof.Function{ID: 1, Name: "main.alive"}
	loc := &gpprof.Location{ID: 1, Line: []gpprof.Line{{Function: fn}}}
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "made_up", Unit: "profilos"}},
		PeriodType: &gpprof.ValueType{Type: "made_up", Unit: "profilos"}, Period: 1,
		Sample:   []*gpprof.Sample{{Location: []*gpprof.Location{loc}, Value: []int64{7}}},
		Location: []*gpprof.Location{loc}, Function: []*gpprof.Function{fn},
		TimeNanos: time.Now().UnixNano(),
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	_, err := c.Push(context.Background(), connect.NewRequest(newPushRequest(
		series{labels: []string{"__name__", "deadmans_switch", "service_name", "canary"}, profiles: [][]byte{buf.Bytes()}},
		series{labels: []string{"service_name", "unnamed"}, profiles: [][]byte{buf.Bytes()}},
	)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for k, pts := range seriesPoints(t, s.store.DB, "anonymous") {
		got[k] = sum(pts)
	}
	want := map[string]int64{
		`{__profile_type__="deadmans_switch:made_up:profilos:made_up:profilos", service_name="canary"}`: 7,
		// Without a name, the sample types name it.
		`{__profile_type__="made_up:made_up:profilos:made_up:profilos", service_name="unnamed"}`: 7,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored series (-want +got):\n%s", d)
	}
}

func treeHas(n *query.Node, name string) bool {
	if n.Name == name {
		return true
	}
	for _, c := range n.Children {
		if treeHas(c, name) {
			return true
		}
	}
	return false
}

// heapPair returns a real Go heap profile and a later one of the same
// process in which every allocation count has doubled, ten seconds on.
func heapPair(t *testing.T) (first, second []byte, p *gpprof.Profile) {
	t.Helper()
	var file string
	for _, f := range testfiles.Pprof(t) {
		if strings.HasSuffix(f, "gobench.heap") {
			file = f
		}
	}
	p = parse(t, readFile(t, file))
	p.TimeNanos = time.Unix(1_700_000_000, 0).UnixNano()
	var b1 bytes.Buffer
	if err := p.Write(&b1); err != nil {
		t.Fatal(err)
	}
	p2 := p.Copy()
	p2.TimeNanos += int64(10 * time.Second)
	for i, st := range p2.SampleType {
		if strings.HasPrefix(st.Type, "alloc_") {
			for _, s := range p2.Sample {
				s.Value[i] *= 2
			}
		}
	}
	var b2 bytes.Buffer
	if err := p2.Write(&b2); err != nil {
		t.Fatal(err)
	}
	return b1.Bytes(), b2.Bytes(), p
}

func TestPushDeltaSemantics(t *testing.T) {
	s := newServers(t)
	c := newClient(s.h1.Client(), s.h1.URL)
	first, second, p := heapPair(t)
	block := goContentionProfile(t, "block")
	for _, raw := range [][]byte{first, second} {
		_, err := c.Push(context.Background(), connect.NewRequest(newPushRequest(
			// Pyroscope computes the deltas of memory's alloc types.
			series{labels: []string{"__name__", "memory", "service_name", "server-delta"}, profiles: [][]byte{raw}},
			// Alloy computed them already and says so.
			series{labels: []string{"__name__", "memory", "service_name", "client-delta", "__delta__", "false"}, profiles: [][]byte{raw}},
			// Pyroscope computes deltas for no other profile: the same
			// cumulative block profile twice is stored twice.
			series{labels: []string{"__name__", "block", "service_name", "as-sent"}, profiles: [][]byte{block}},
		)))
		if err != nil {
			t.Fatal(err)
		}
	}
	alloc, inuse := total(p, "alloc_space"), total(p, "inuse_space")
	contentions := total(parse(t, block), "contentions")
	if alloc == 0 || inuse == 0 || contentions == 0 {
		t.Fatalf("profile totals: alloc %d inuse %d contentions %d", alloc, inuse, contentions)
	}
	got := map[string]int64{}
	for k, pts := range seriesPoints(t, s.store.DB, "anonymous") {
		if strings.Contains(k, "_space:") || strings.Contains(k, ":contentions:count:") {
			got[k] = sum(pts)
		}
	}
	want := map[string]int64{
		// The first profile is only a baseline; the second adds 2a-a.
		`{__profile_type__="memory:alloc_space:bytes:space:bytes", service_name="server-delta"}`: alloc,
		`{__profile_type__="memory:inuse_space:bytes:space:bytes", service_name="server-delta"}`: 2 * inuse,
		// Both stored as sent: a + 2a.
		`{__profile_type__="memory:alloc_space:bytes:space:bytes", service_name="client-delta"}`: 3 * alloc,
		`{__profile_type__="memory:inuse_space:bytes:space:bytes", service_name="client-delta"}`: 2 * inuse,
		`{__profile_type__="block:contentions:count:contentions:count", service_name="as-sent"}`: 2 * contentions,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored totals (-want +got):\n%s", d)
	}
}

func TestPushRefusesBadSeriesStoresTheRest(t *testing.T) {
	s := newServers(t)
	c := newClient(s.h1.Client(), s.h1.URL, connect.WithProtoJSON())
	files := testfiles.CorpusCPU(t)
	good1, good2 := readFile(t, files[1]), readFile(t, files[2])
	_, err := c.Push(context.Background(), connect.NewRequest(newPushRequest(
		series{labels: []string{"__name__", "process_cpu", "service_name", "ok"}, profiles: [][]byte{good1}},
		// No service_name: Pyroscope's fallback. The second sample is not
		// a profile.
		series{labels: []string{"__name__", "process_cpu", "team", "t1"}, profiles: [][]byte{good2, []byte("not a profile")}},
		series{labels: []string{"__name__", "process_cpu", "service_name", "bad", "bad-label", "x"}, profiles: [][]byte{good1}},
		series{labels: []string{"service_name", "dup", "service_name", "dup"}, profiles: [][]byte{good1}},
	)))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	if got := ce.Meta().Get(RefusedHeader); got != "3" {
		t.Errorf("%s = %q; want 3", RefusedHeader, got)
	}
	msg := ce.Message()
	for _, want := range []string{
		"3 of 5 profiles refused (the others were stored)",
		`series 1 {__name__="process_cpu", team="t1"} sample 1 (ID "id-b"): parse pprof`,
		`series 2 {__name__="process_cpu", service_name="bad", bad-label="x"} sample 0 (ID "id-a"): invalid label name "bad-label"`,
		`series 3 {service_name="dup", service_name="dup"} sample 0 (ID "id-a"): label "service_name" appears more than once`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error message %q does not contain %q", msg, want)
		}
	}
	got := map[string]int64{}
	for k, pts := range seriesPoints(t, s.store.DB, "anonymous") {
		if strings.Contains(k, ":cpu:nanoseconds:cpu:") {
			got[k] = sum(pts)
		}
	}
	want := map[string]int64{
		`{__profile_type__="process_cpu:cpu:nanoseconds:cpu:nanoseconds", service_name="ok"}`:                     total(parse(t, good1), "cpu"),
		`{__profile_type__="process_cpu:cpu:nanoseconds:cpu:nanoseconds", service_name="unspecified", team="t1"}`: total(parse(t, good2), "cpu"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored series (-want +got):\n%s", d)
	}
}

func TestPushErrors(t *testing.T) {
	s := newServers(t, WithMaxMessageBytes(4096))
	c := newClient(s.h1.Client(), s.h1.URL)
	raw := readFile(t, testfiles.CorpusCPU(t)[0])
	for _, tc := range []struct {
		name string
		req  *pushv1.PushRequest
		org  string
		code connect.Code
		msg  string
	}{
		{"empty", newPushRequest(), "", connect.CodeInvalidArgument, "no profiles received"},
		{"series without samples", newPushRequest(series{labels: []string{"service_name", "x"}}), "", connect.CodeInvalidArgument, "no profiles received"},
		{"too large", newPushRequest(series{labels: []string{"service_name", "x"}, profiles: [][]byte{raw}}), "", connect.CodeResourceExhausted, "larger than configured max"},
		{"bad tenant", newPushRequest(series{labels: []string{"service_name", "x"}, profiles: [][]byte{[]byte("x")}}), "a/b", connect.CodeInvalidArgument, "invalid tenant"},
		{"bad profile name", newPushRequest(series{labels: []string{"__name__", "process-cpu"}, profiles: [][]byte{[]byte("x")}}), "", connect.CodeInvalidArgument, `invalid profile name "process-cpu"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := connect.NewRequest(tc.req)
			if tc.org != "" {
				req.Header().Set("X-Scope-OrgID", tc.org)
			}
			_, err := c.Push(context.Background(), req)
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.code, tc.msg)
			}
		})
	}
	if got := seriesPoints(t, s.store.DB, "anonymous"); len(got) != 0 {
		t.Errorf("refused pushes stored %v", got)
	}
}

func TestPushStorageFailureIsUnavailable(t *testing.T) {
	s := newServers(t)
	c := newClient(s.h1.Client(), s.h1.URL)
	if err := s.store.DB.Close(); err != nil {
		t.Fatal(err)
	}
	raw := readFile(t, testfiles.CorpusCPU(t)[0])
	_, err := c.Push(context.Background(), connect.NewRequest(newPushRequest(
		series{labels: []string{"service_name", "x"}, profiles: [][]byte{raw}})))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
}

func TestPushUnknownPath(t *testing.T) {
	s := newServers(t)
	resp, err := http.Post(s.h1.URL+"/push.v1.PusherService/Other", "application/proto", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

func TestReadSeries(t *testing.T) {
	for _, tc := range []struct {
		pairs  []string
		labels string
		cont   ingest.Contention
		delta  bool
	}{
		{[]string{"__name__", "memory", "service_name", "a"}, `{service_name="a"}`, ingest.ContentionUnknown, true},
		{[]string{"__name__", "memory", "service_name", "a", "__delta__", "false"}, `{service_name="a"}`, ingest.ContentionUnknown, false},
		{[]string{"__name__", "memory", "service_name", "a", "__delta__", "true"}, `{service_name="a"}`, ingest.ContentionUnknown, true},
		{[]string{"__name__", "mutex", "job", "j"}, `{job="j", service_name="unspecified"}`, ingest.ContentionMutex, false},
		{[]string{"__name__", "block", "service_name", ""}, `{service_name="unspecified"}`, ingest.ContentionBlock, false},
		{[]string{"__name__", "goroutine", "service_name", "g", "__session_id__", "1"}, `{service_name="g"}`, ingest.ContentionUnknown, false},
		{nil, `{service_name="unspecified"}`, ingest.ContentionUnknown, false},
	} {
		info, err := readSeries(newPushRequest(series{labels: tc.pairs}).Series[0].Labels)
		if err != nil {
			t.Errorf("%v: %v", tc.pairs, err)
			continue
		}
		if info.labels.String() != tc.labels || info.contention != tc.cont || info.serverDelta != tc.delta {
			t.Errorf("%v: labels %s contention %q delta %v; want %s %q %v", tc.pairs, info.labels, info.contention, info.serverDelta, tc.labels, tc.cont, tc.delta)
		}
		if err := info.labels.Validate(); err != nil {
			t.Errorf("%v: series labels do not validate: %v", tc.pairs, err)
		}
	}
}

// TestPushRawJSON posts the JSON a script would write by hand, with the
// field names of the .proto file or their JSON names, as the Connect
// protocol allows.
func TestPushRawJSON(t *testing.T) {
	s := newServers(t)
	raw := readFile(t, testfiles.CorpusCPU(t)[3])
	b64 := base64.StdEncoding.EncodeToString(raw)
	for _, body := range []string{
		`{"series":[{"labels":[{"name":"service_name","value":"json-a"}],"samples":[{"rawProfile":"` + b64 + `","ID":"1"}]}]}`,
		`{"series":[{"labels":[{"name":"service_name","value":"json-b"}],"samples":[{"raw_profile":"` + b64 + `"}]}],"unknown":1}`,
	} {
		resp, err := http.Post(s.h1.URL+PushProcedure, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(out) != "{}" {
			t.Errorf("status %d body %s, want 200 {}", resp.StatusCode, out)
		}
	}
	resp, err := http.Post(s.h1.URL+PushProcedure, "application/json", strings.NewReader(`{"series":[{"samples":[{"rawProfile":"%%%"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad base64: status %d, want 400", resp.StatusCode)
	}
	cpu := total(parse(t, raw), "cpu")
	got := map[string]int64{}
	for k, pts := range seriesPoints(t, s.store.DB, "anonymous") {
		if strings.Contains(k, ":cpu:nanoseconds:cpu:") {
			got[k] = sum(pts)
		}
	}
	want := map[string]int64{
		`{__profile_type__="process_cpu:cpu:nanoseconds:cpu:nanoseconds", service_name="json-a"}`: cpu,
		`{__profile_type__="process_cpu:cpu:nanoseconds:cpu:nanoseconds", service_name="json-b"}`: cpu,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored series (-want +got):\n%s", d)
	}
}

// TestPushGRPCOverCleartextHTTP2 is how a server that listens without TLS
// serves gRPC clients: with unencrypted HTTP/2 enabled on http.Server.
func TestPushGRPCOverCleartextHTTP2(t *testing.T) {
	store := profiletest.OpenStore(t)
	path, h := NewHandler(store.Ing, testLogger(t))
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := newClient(&http.Client{Transport: tr}, srv.URL, connect.WithGRPC())
	raw := readFile(t, testfiles.CorpusCPU(t)[4])
	if _, err := c.Push(context.Background(), connect.NewRequest(newPushRequest(
		series{labels: []string{"__name__", "process_cpu", "service_name", "h2c"}, profiles: [][]byte{raw}}))); err != nil {
		t.Fatal(err)
	}
	got := seriesPoints(t, store.DB, "anonymous")
	k := `{__profile_type__="process_cpu:cpu:nanoseconds:cpu:nanoseconds", service_name="h2c"}`
	if sum(got[k]) != total(parse(t, raw), "cpu") {
		t.Errorf("stored %v, want %s with the profile's CPU total", got, k)
	}
}
