package instrument

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newTracer returns a tracer of the SDK, wrapped, and the recorder of
// the spans it ends.
func newTracer(t testing.TB) (trace.Tracer, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return TracerProvider(tp).Tracer("test"), rec
}

func attrsOf(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// spin does n rounds of work, a fixed amount of CPU time however busy
// the machine is (the profiler samples CPU time, not wall time).
//
//go:noinline
func spin(n int, name string) int {
	x := 0
	for range n {
		for i := range 10000 {
			x += i ^ len(name) ^ x>>3
		}
	}
	return x
}

// spinSink keeps the spins' results, so that they are not optimized away.
var spinSink int

// About a second of CPU on this project's machines: some 100 samples at 100 Hz.
const spinRounds = 150_000

//go:noinline
func spinChild(n int) int { return spin(n, "child") }

//go:noinline
func spinRoot(n int) int { return spin(n, "root") }

//go:noinline
func spinAfter(n int) int { return spin(n, "after") }

// TestSamplesCarryTheirSpan profiles code run in a child span, in its
// root after the child ended, and after both ended, with the runtime's
// CPU profiler, and checks each sample's labels.
func TestSamplesCarryTheirSpan(t *testing.T) {
	tracer, rec := newTracer(t)
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Fatal(err)
	}
	ctx, root := tracer.Start(context.Background(), "GET /cart")
	_, child := tracer.Start(ctx, "SELECT cart")
	sink := spinChild(spinRounds)
	child.End()
	sink += spinRoot(spinRounds)
	root.End()
	sink += spinAfter(spinRounds)
	pprof.StopCPUProfile()
	spinSink = sink

	p, err := gpprof.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rs, cs := root.SpanContext(), child.SpanContext()
	want := map[string]map[string]string{
		"spinChild": {LabelSpanID: cs.SpanID().String(), LabelLocalRootSpanID: rs.SpanID().String(), LabelTraceID: rs.TraceID().String()},
		"spinRoot":  {LabelSpanID: rs.SpanID().String(), LabelLocalRootSpanID: rs.SpanID().String(), LabelTraceID: rs.TraceID().String()},
		"spinAfter": {},
	}
	seen := map[string]int{}
	for _, s := range p.Sample {
		fn := ""
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				for name := range want {
					if strings.HasSuffix(l.Function.Name, "."+name) {
						fn = name
					}
				}
			}
		}
		w, ok := want[fn]
		if !ok {
			continue
		}
		seen[fn]++
		got := map[string]string{}
		for k, v := range s.Label {
			got[k] = v[0]
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("a sample of %s has labels %v, want %v", fn, got, w)
			break
		}
	}
	for fn := range want {
		if seen[fn] < 3 {
			t.Errorf("%d samples of %s, want at least 3", seen[fn], fn)
		}
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans ended, want 2", len(spans))
	}
	for _, s := range spans {
		id, ok := attrsOf(s)[ProfileIDAttribute]
		if s.Name() == "GET /cart" && id != rs.SpanID().String() {
			t.Errorf("root: %s = %q, want its span ID", ProfileIDAttribute, id)
		}
		if s.Name() == "SELECT cart" && ok {
			t.Errorf("child has %s", ProfileIDAttribute)
		}
	}
}

// TestLocalRoot checks which span is a local root: the first of a trace
// in the process, under a remote parent or none.
func TestLocalRoot(t *testing.T) {
	tracer, _ := newTracer(t)
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx, server := tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "server")
	defer server.End()
	cctx, client := tracer.Start(ctx, "client")
	defer client.End()
	sid := server.SpanContext().SpanID().String()
	for _, c := range []struct {
		ctx  context.Context
		want map[string]string
	}{
		{ctx, map[string]string{LabelSpanID: sid, LabelLocalRootSpanID: sid, LabelTraceID: remote.TraceID().String()}},
		{cctx, map[string]string{LabelSpanID: client.SpanContext().SpanID().String(), LabelLocalRootSpanID: sid, LabelTraceID: remote.TraceID().String()}},
	} {
		got := map[string]string{}
		pprof.ForLabels(c.ctx, func(k, v string) bool { got[k] = v; return true })
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("labels %v, want %v", got, c.want)
		}
	}
	// A new root in the same process starts its own local root.
	nctx, fresh := tracer.Start(cctx, "job", trace.WithNewRoot())
	defer fresh.End()
	if root, _ := pprof.Label(nctx, LabelLocalRootSpanID); root != fresh.SpanContext().SpanID().String() {
		t.Errorf("a new root's local root is %s", root)
	}
}

// TestNotRecording: a span sampled out gets no labels.
func TestNotRecording(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := TracerProvider(tp).Tracer("t").Start(context.Background(), "x")
	defer span.End()
	if _, ok := pprof.Label(ctx, LabelSpanID); ok {
		t.Error("a span that does not record is labelled")
	}
}

func TestRun(t *testing.T) {
	tracer, rec := newTracer(t)
	ctx := context.Background()
	boom := errors.New("card declined")
	if err := Run(ctx, tracer, "ok", func(context.Context) error { return nil }, trace.WithAttributes(attribute.String("user.id", "u-81"))); err != nil {
		t.Fatal(err)
	}
	if err := Run(ctx, tracer, "fails", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Run returned %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_ = Run(cctx, tracer, "canceled", func(ctx context.Context) error { return ctx.Err() })
	func() {
		defer func() { _ = recover() }()
		_ = Run(ctx, tracer, "panics", func(context.Context) error { panic("nil map") })
	}()
	want := map[string]struct {
		result, err string
		status      codes.Code
	}{
		"ok":       {ResultSuccess, "", codes.Unset},
		"fails":    {ResultError, "card declined", codes.Error},
		"canceled": {ResultCanceled, "context canceled", codes.Unset},
		"panics":   {ResultError, "panic: nil map", codes.Error},
	}
	spans := rec.Ended()
	if len(spans) != len(want) {
		t.Fatalf("%d spans, want %d", len(spans), len(want))
	}
	for _, s := range spans {
		a, w := attrsOf(s), want[s.Name()]
		if a[ResultField] != w.result || a[ErrorField] != w.err || s.Status().Code != w.status {
			t.Errorf("%s: result %q error %q status %v, want %+v", s.Name(), a[ResultField], a[ErrorField], s.Status().Code, w)
		}
		if s.Name() == "ok" && a["user.id"] != "u-81" {
			t.Errorf("ok: attributes %v", a)
		}
	}
}

func TestTraceFields(t *testing.T) {
	tracer, rec := newTracer(t)
	ctx, root := tracer.Start(context.Background(), "request")
	ctx = AddTraceField(ctx, "tenant", "acme")
	ctx = AddTraceFields(ctx, attribute.Int("build", 412), attribute.String("tenant", "globex"))
	AddField(ctx, "cart.items", 3)
	_, child := tracer.Start(ctx, "query")
	child.End()
	root.End()
	for _, s := range rec.Ended() {
		a := attrsOf(s)
		if a["tenant"] != "globex" || a["build"] != "412" {
			t.Errorf("%s: attributes %v", s.Name(), a)
		}
		if s.Name() == "request" && a["cart.items"] != "3" {
			t.Errorf("request: attributes %v", a)
		}
	}
}

func TestField(t *testing.T) {
	for _, c := range []struct {
		v    any
		want attribute.Value
	}{
		{"a", attribute.StringValue("a")}, {true, attribute.BoolValue(true)}, {7, attribute.IntValue(7)},
		{int64(7), attribute.Int64Value(7)}, {2.5, attribute.Float64Value(2.5)},
		{errors.New("e"), attribute.StringValue("e")}, {time.Second, attribute.StringValue("1s")},
		{struct{ A int }{1}, attribute.StringValue("{1}")},
	} {
		if got := Field("k", c.v).Value; got != c.want {
			t.Errorf("Field(%#v) = %v, want %v", c.v, got.String(), c.want.String())
		}
	}
}
