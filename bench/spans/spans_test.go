package spans

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

var testEnd = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func testConfig(spans int64) Config {
	cfg := DefaultConfig(spans, testEnd, time.Hour)
	cfg.BatchSpans = 500
	return cfg
}

// decoded is what a test reads back from encoded batches.
type decoded struct {
	spans, requests, slowRequests, errors int
	services, routes                      map[string]bool
	slowDur, otherDur                     []float64
}

// decode reads every span of body, checks what each must hold, and adds
// it to d. slow picks the slow requests as a reader would, from the
// attributes sent.
func (d *decoded) decode(t *testing.T, body []byte, slow Slow) {
	t.Helper()
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		t.Fatalf("decode batch: %v", err)
	}
	type server struct {
		trace      pcommon.TraceID
		start, end pcommon.Timestamp
	}
	servers := map[pcommon.SpanID]server{}
	var clients []ptrace.Span
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		for _, k := range []string{"service.name", "service.version", "host.name", "k8s.pod.name", "deployment.environment.name", "cloud.region"} {
			if v, ok := res.Get(k); !ok || v.Str() == "" {
				t.Fatalf("resource without %s: %v", k, res.AsRaw())
			}
		}
		svc, _ := res.Get("service.name")
		d.services[svc.Str()] = true
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			sps := sss.At(j).Spans()
			for s := range sps.Len() {
				sp := sps.At(s)
				d.spans++
				if sp.EndTimestamp() <= sp.StartTimestamp() {
					t.Fatalf("span %s ends before it starts", sp.Name())
				}
				if sp.Status().Code() == ptrace.StatusCodeError {
					d.errors++
					if sp.Status().Message() == "" {
						t.Fatalf("error span %s without a status message", sp.Name())
					}
				}
				if sp.Kind() == ptrace.SpanKindClient {
					clients = append(clients, sp)
					continue
				}
				if sp.Kind() != ptrace.SpanKindServer || !sp.ParentSpanID().IsEmpty() {
					t.Fatalf("span %s: kind %v, parent %v: want a root server span", sp.Name(), sp.Kind(), sp.ParentSpanID())
				}
				attrs := sp.Attributes()
				if attrs.Len() != 15 {
					t.Fatalf("server span with %d attributes, want 15: %v", attrs.Len(), attrs.AsRaw())
				}
				for _, k := range []string{"http.request.method", "http.route", "url.path", "http.response.status_code",
					"server.address", "user_agent.original", "client.address", "network.protocol.version", "user.id", "order.id"} {
					if _, ok := attrs.Get(k); !ok {
						t.Fatalf("server span without %s: %v", k, attrs.AsRaw())
					}
				}
				route, _ := attrs.Get("http.route")
				d.routes[svc.Str()+" "+route.Str()] = true
				d.requests++
				servers[sp.SpanID()] = server{sp.TraceID(), sp.StartTimestamp(), sp.EndTimestamp()}
				var v pcommon.Value
				var ok bool
				if k, isRes := strings.CutPrefix(slow.Attr, "resource."); isRes {
					v, ok = res.Get(k)
				} else {
					v, ok = attrs.Get(strings.TrimPrefix(slow.Attr, "span."))
				}
				dur := float64(sp.EndTimestamp() - sp.StartTimestamp())
				if ok && v.AsString() == slow.Value {
					d.slowRequests++
					d.slowDur = append(d.slowDur, dur)
				} else {
					d.otherDur = append(d.otherDur, dur)
				}
			}
		}
	}
	for _, c := range clients {
		p, ok := servers[c.ParentSpanID()]
		if !ok {
			t.Fatalf("client span %s: parent %v is no server span of the batch", c.Name(), c.ParentSpanID())
		}
		if p.trace != c.TraceID() {
			t.Fatalf("client span %s: trace %v, its parent's %v", c.Name(), c.TraceID(), p.trace)
		}
		if c.StartTimestamp() < p.start || c.EndTimestamp() > p.end {
			t.Fatalf("client span %s is not inside its parent", c.Name())
		}
		if n := c.Attributes().Len(); n < 5 {
			t.Fatalf("client span %s with %d attributes", c.Name(), n)
		}
	}
	if len(servers) == 0 {
		t.Fatal("batch without server spans")
	}
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func generate(t *testing.T, cfg Config) (*Workload, []Batch) {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []Batch
	if err := w.Generate(context.Background(), 2, func(b Batch) error { out = append(out, b); return nil }); err != nil {
		t.Fatal(err)
	}
	return w, out
}

func TestWorkloadShape(t *testing.T) {
	for _, slow := range []Slow{DefaultSlow, {Attr: "span.app.customer.tier", Value: "enterprise", Factor: 5}} {
		t.Run(slow.String(), func(t *testing.T) {
			cfg := testConfig(40_000)
			cfg.Slow = slow
			w, batches := generate(t, cfg)
			d := &decoded{services: map[string]bool{}, routes: map[string]bool{}}
			var st Stats
			for _, b := range batches {
				if b.Stats.Spans < int64(cfg.BatchSpans) || b.Stats.Spans > int64(cfg.BatchSpans)+4 {
					t.Fatalf("batch %d: %d spans, want %d to %d", b.Index, b.Stats.Spans, cfg.BatchSpans, cfg.BatchSpans+4)
				}
				st.Add(b.Stats)
				d.decode(t, b.Body, slow)
			}
			if len(batches) != w.Batches() || w.Batches() != 80 {
				t.Fatalf("%d batches, Batches() %d, want 80", len(batches), w.Batches())
			}
			if int64(d.spans) != st.Spans || int64(d.requests) != st.Requests || int64(d.slowRequests) != st.SlowRequests || int64(d.errors) != st.ErrorSpans {
				t.Fatalf("decoded %d spans, %d requests, %d slow, %d errors; stats say %+v", d.spans, d.requests, d.slowRequests, d.errors, st)
			}
			if perReq := float64(d.spans) / float64(d.requests); perReq < 2 || perReq > 5 {
				t.Fatalf("%.2f spans per request, want 2 (1 client span) to 5 (4)", perReq)
			}
			if len(d.services) != 50 {
				t.Fatalf("%d services, want 50", len(d.services))
			}
			if len(d.routes) < 200 || w.Routes() < len(d.routes) {
				t.Fatalf("%d routes seen of %d, want a few hundred", len(d.routes), w.Routes())
			}
			// About 11,400 requests: the share's standard error is 0.0013.
			share := float64(d.slowRequests) / float64(d.requests)
			if math.Abs(share-0.02) > 0.005 {
				t.Fatalf("slow share %.4f, want 0.02 ± 0.005", share)
			}
			ratio := medianOf(d.slowDur) / medianOf(d.otherDur)
			if ratio < slow.Factor*0.6 || ratio > slow.Factor*1.6 {
				t.Fatalf("slow requests' median duration is %.1f times the others', want about %v", ratio, slow.Factor)
			}
			errShare := float64(d.errors) / float64(d.spans)
			if errShare < 0.002 || errShare > 0.02 {
				t.Fatalf("%.4f of spans are errors, want about 2 per failed request of 1 %%", errShare)
			}
			if lo, hi := testEnd.Add(-time.Hour).UnixNano(), testEnd.Add(time.Minute).UnixNano(); st.MinStart < lo || st.MaxEnd > hi {
				t.Fatalf("spans from %v to %v, outside the window", time.Unix(0, st.MinStart), time.Unix(0, st.MaxEnd))
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	cfg := testConfig(5_000)
	_, a := generate(t, cfg)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// One batch at a time, out of order, with no workers.
	for _, i := range []int{7, 0, 3} {
		b, err := w.Encode(i)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Body, a[i].Body) || b.Stats != a[i].Stats || b.First != a[i].First {
			t.Fatalf("batch %d differs between two makings", i)
		}
	}
	cfg.Seed = 2
	_, c := generate(t, cfg)
	if bytes.Equal(a[0].Body, c[0].Body) {
		t.Fatal("seeds 1 and 2 made the same batch")
	}
}

func TestBadConfig(t *testing.T) {
	for name, slow := range map[string]Slow{
		"unknown resource key": {Attr: "resource.cloud.zone", Value: "x", Factor: 2},
		"no pod has it":        {Attr: "resource.cloud.region", Value: "mars-1", Factor: 2},
		"span key not drawn":   {Attr: "span.http.response.status_code", Value: "500", Factor: 2},
		"zero factor":          {Attr: "resource.cloud.region", Value: SmallRegion},
	} {
		cfg := testConfig(1000)
		cfg.Slow = slow
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, slow)
		}
	}
	for _, s := range []string{"cloud.region", "=x", "resource.cloud.region="} {
		if _, err := ParseSlow(s, 8); err == nil {
			t.Errorf("ParseSlow(%q) accepted it", s)
		}
	}
	if s, err := ParseSlow("span.app.customer.tier=enterprise", 3); err != nil || s.Attr != "span.app.customer.tier" || s.Value != "enterprise" || s.Factor != 3 {
		t.Errorf("ParseSlow: %+v, %v", s, err)
	}
}

// collector is an OTLP gRPC trace server that counts what it receives.
type collector struct {
	ptraceotlp.UnimplementedGRPCServer
	mu      sync.Mutex
	spans   int
	calls   int
	tenants map[string]int
}

func (c *collector) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.spans += req.Traces().SpanCount()
	c.tenants[strings.Join(md.Get("x-scope-orgid"), ",")]++
	return ptraceotlp.NewExportResponse(), nil
}

func startServer(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestSend(t *testing.T) {
	col := &collector{tenants: map[string]int{}}
	addr := startServer(t, func(s *grpc.Server) { ptraceotlp.RegisterGRPCServer(s, col) })
	w, err := New(testConfig(6_000))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := w.LiveSource(ctx, 2)
	for _, gz := range []bool{false, true} {
		if gz {
			src = w.LiveSource(ctx, 2)
		}
		res, err := Send(ctx, SendConfig{Addr: addr, Tenant: "team-a", Clients: 3, Gzip: gz}, src)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := StatsOf(src)
		if res.Requests != 12 || res.Spans != st.Spans || res.Failed != 0 || res.Rejected != 0 || len(res.Errors) != 0 {
			t.Fatalf("gzip %v: sent %+v; the batches hold %+v", gz, res, st)
		}
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if col.calls != 24 || col.tenants["team-a"] != 24 {
		t.Fatalf("server saw %d calls, tenants %v", col.calls, col.tenants)
	}
}

func TestSendUnimplemented(t *testing.T) {
	addr := startServer(t, func(*grpc.Server) {})
	w, err := New(testConfig(3_000))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Send(context.Background(), SendConfig{Addr: addr, Clients: 2}, w.LiveSource(context.Background(), 1))
	if !errors.Is(err, ErrUnimplemented) {
		t.Fatalf("Send to a server without TraceService: %v, want ErrUnimplemented", err)
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(8_000)
	w, batches := generate(t, cfg)
	m, err := WriteDir(context.Background(), dir, w, 3)
	if err != nil {
		t.Fatal(err)
	}
	if m.Stats.Batches != len(batches) || len(m.Samples) != len(batches) || m.Samples[5] != batches[5].First {
		t.Fatalf("manifest: %d batches, %d samples", m.Stats.Batches, len(m.Samples))
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Manifest.Config.End.Equal(cfg.End) || d.Manifest.Stats != m.Stats {
		t.Fatalf("manifest read back: %+v", d.Manifest)
	}
	for i := 0; ; i++ {
		body, spans, err := d.Next()
		if err == io.EOF {
			if i != len(batches) {
				t.Fatalf("%d batches read back, want %d", i, len(batches))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, batches[i].Body) || int64(spans) != batches[i].Stats.Spans {
			t.Fatalf("batch %d read back differs", i)
		}
	}

	col := &collector{tenants: map[string]int{}}
	addr := startServer(t, func(s *grpc.Server) { ptraceotlp.RegisterGRPCServer(s, col) })
	d2, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	res, err := Send(context.Background(), SendConfig{Addr: addr, Clients: 4}, d2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Spans != m.Stats.Spans || col.spans != int(m.Stats.Spans) {
		t.Fatalf("sent %d spans, server got %d, the manifest says %d", res.Spans, col.spans, m.Stats.Spans)
	}
}

func TestReadFrameDamaged(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, []byte("hello"), 3); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for name, in := range map[string][]byte{
		"cut header": good[:5],
		"cut body":   good[:len(good)-1],
		"huge":       {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1},
	} {
		if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(in))); err == nil || err == io.EOF {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
	body, spans, err := readFrame(bufio.NewReader(bytes.NewReader(good)))
	if err != nil || string(body) != "hello" || spans != 3 {
		t.Fatalf("readFrame: %q %d %v", body, spans, err)
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, []byte("body"), 2)
	_ = writeFrame(&buf, nil, 0)
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 9, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		read := 0
		for {
			body, _, err := readFrame(r)
			if err != nil {
				break
			}
			read += 8 + len(body)
		}
		if read > len(in) {
			t.Fatalf("read %d bytes of frames from %d", read, len(in))
		}
	})
}

func TestServices(t *testing.T) {
	cfg := testConfig(20_000)
	cfg.Services = []string{"tax", "checkout"}
	w, batches := generate(t, cfg)
	d := &decoded{services: map[string]bool{}, routes: map[string]bool{}}
	for _, b := range batches {
		d.decode(t, b.Body, cfg.Slow)
	}
	if len(d.services) != 2 || !d.services["tax"] || !d.services["checkout"] {
		t.Fatalf("services %v, want tax and checkout", d.services)
	}
	var sum float64
	for _, si := range w.ServiceInfo() {
		if (si.Share > 0) != slices.Contains(cfg.Services, si.Name) {
			t.Errorf("service %s: share %v", si.Name, si.Share)
		}
		sum += si.Share
		var rs float64
		for _, r := range si.Routes {
			rs += r.Share
			if r.Median <= 0 || r.Sigma <= 0 {
				t.Errorf("route %s of %s: median %v, sigma %v", r.Template, si.Name, r.Median, r.Sigma)
			}
		}
		if math.Abs(rs-1) > 1e-9 {
			t.Errorf("service %s: route shares add up to %v", si.Name, rs)
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("service shares add up to %v", sum)
	}
	for _, bad := range [][]string{{"nosuch"}, {"tax", "tax"}} {
		cfg := testConfig(1000)
		cfg.Services = bad
		if _, err := New(cfg); err == nil {
			t.Errorf("New accepted services %v", bad)
		}
	}
}
