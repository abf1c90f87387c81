package otlp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// The example's span links, as a tracing SDK would have made them.
var (
	traceA = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanA  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	traceB = pcommon.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	spanB  = pcommon.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
)

const exampleScope = "hearth.test/profiler"

// exampleProfiles is an export request as a profiler of two services
// would send it, with everything the conversion handles: resource and
// scope attributes of several types, an inlined frame, a mapping with a
// build ID, span links, sample attributes, timestamped samples, and a
// profile whose time is when it was taken.
//
// Its stored content, per service:
//
//	checkout, cpu (nanoseconds):
//	  main.main;main.handle;encoding/json.Marshal;strconv.Itoa  80e6 (70e6 on trace A, 10e6 on trace B)
//	  main.main;main.idle                                       20e6 (thread.name "idle")
//	inventory, samples (count):
//	  main.main;inventory.Lookup                                 7
//	  main.main;libc.so.6+0x2000 (an unsymbolized frame)         3
func exampleProfiles() pprofile.Profiles {
	b := otlptest.NewBuilder()
	d := b.Dictionary()
	mapping := d.MappingTable().AppendEmpty()
	mapping.SetMemoryStart(0x400000)
	mapping.SetMemoryLimit(0x800000)
	mapping.SetFilenameStrindex(b.Str("/usr/bin/checkout"))
	mapping.AttributeIndices().Append(b.Attr("process.executable.build_id.gnu", "f1e2d3c4", ""))
	libc := d.MappingTable().AppendEmpty()
	libc.SetMemoryStart(0x3000)
	libc.SetMemoryLimit(0x9000)
	libc.SetFileOffset(0x1000)
	libc.SetFilenameStrindex(b.Str("/lib/x86_64-linux-gnu/libc.so.6"))
	fn := func(name, file string, start int64) int32 {
		f := d.FunctionTable().AppendEmpty()
		f.SetNameStrindex(b.Str(name))
		f.SetSystemNameStrindex(b.Str(name))
		f.SetFilenameStrindex(b.Str(file))
		f.SetStartLine(start)
		return int32(d.FunctionTable().Len() - 1)
	}
	fMain := fn("main.main", "main.go", 10)
	fHandle := fn("main.handle", "main.go", 20)
	fMarshal := fn("encoding/json.Marshal", "encoding/json/encode.go", 150)
	fItoa := fn("strconv.Itoa", "strconv/itoa.go", 30)
	fIdle := fn("main.idle", "main.go", 40)
	fLookup := fn("inventory.Lookup", "inventory/lookup.go", 8)
	loc := func(mapping int32, addr uint64, lines ...[2]int64) int32 {
		l := d.LocationTable().AppendEmpty()
		l.SetMappingIndex(mapping)
		l.SetAddress(addr)
		for _, ln := range lines {
			ol := l.Lines().AppendEmpty()
			ol.SetFunctionIndex(int32(ln[0]))
			ol.SetLine(ln[1])
		}
		return int32(d.LocationTable().Len() - 1)
	}
	// strconv.Itoa inlined into encoding/json.Marshal: the callee first.
	lMarshal := loc(1, 0x401000, [2]int64{int64(fItoa), 35}, [2]int64{int64(fMarshal), 160})
	lHandle := loc(1, 0x402000, [2]int64{int64(fHandle), 25})
	lMain := loc(1, 0x403000, [2]int64{int64(fMain), 12})
	lIdle := loc(1, 0x404000, [2]int64{int64(fIdle), 41})
	lLookup := loc(1, 0x405000, [2]int64{int64(fLookup), 9})
	lLibc := loc(2, 0x4000)

	sp := b.Scope(map[string]any{
		"service.name":                "checkout",
		"deployment.environment.name": "prod",
		"host.cpu.count":              int64(8),
		"process.runtime.name":        "go",
	}, exampleScope)
	sp.Scope().SetVersion("1.2.3")
	sp.Scope().Attributes().PutStr("profiler.mode", "sampling")
	cpu := sp.Profiles().AppendEmpty()
	cpu.SampleType().SetTypeStrindex(b.Str("cpu"))
	cpu.SampleType().SetUnitStrindex(b.Str("nanoseconds"))
	cpu.PeriodType().SetTypeStrindex(b.Str("cpu"))
	cpu.PeriodType().SetUnitStrindex(b.Str("nanoseconds"))
	cpu.SetPeriod(10_000_000)
	cpu.SetTime(pcommon.NewTimestampFromTime(t0))
	cpu.SetDurationNano(uint64(10 * time.Second))
	cpu.SetProfileID(pprofile.ProfileID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	hot := b.Stack([]int32{lMarshal, lHandle, lMain})
	idle := b.Stack([]int32{lIdle, lMain})
	s := cpu.Samples().AppendEmpty()
	s.SetStackIndex(hot)
	s.Values().Append(70_000_000)
	s.SetLinkIndex(b.Link(traceA, spanA))
	s.AttributeIndices().Append(b.Attr("thread.name", "worker-1", ""))
	s = cpu.Samples().AppendEmpty()
	s.SetStackIndex(idle)
	s.Values().Append(20_000_000)
	s.AttributeIndices().Append(b.Attr("thread.name", "idle", ""))
	// One value per timestamp, as a profiler that keeps event times
	// sends them.
	s = cpu.Samples().AppendEmpty()
	s.SetStackIndex(hot)
	s.Values().FromRaw([]int64{4_000_000, 6_000_000})
	s.TimestampsUnixNano().FromRaw([]uint64{uint64(t0.Add(time.Second).UnixNano()), uint64(t0.Add(2 * time.Second).UnixNano())})
	s.SetLinkIndex(b.Link(traceB, spanB))

	sp = b.Scope(map[string]any{"service.name": "inventory", "k8s.pod.name": "inventory-7d9f"}, exampleScope)
	samples := sp.Profiles().AppendEmpty()
	samples.SampleType().SetTypeStrindex(b.Str("samples"))
	samples.SampleType().SetUnitStrindex(b.Str("count"))
	samples.PeriodType().SetTypeStrindex(b.Str("cpu"))
	samples.PeriodType().SetUnitStrindex(b.Str("nanoseconds"))
	samples.SetPeriod(10_000_000)
	samples.SetTime(pcommon.NewTimestampFromTime(t0))
	s = samples.Samples().AppendEmpty()
	s.SetStackIndex(b.Stack([]int32{lLookup, lMain}))
	// Only timestamps: one event each.
	for i := range 7 {
		s.TimestampsUnixNano().Append(uint64(t0.Add(time.Duration(i) * time.Millisecond).UnixNano()))
	}
	s = samples.Samples().AppendEmpty()
	s.SetStackIndex(b.Stack([]int32{lLibc, lMain}))
	s.Values().Append(3)
	return b.Profiles()
}

// exampleStacks is what exampleProfiles stores, by query.
var exampleStacks = map[string]profiletest.Stacks{
	`cpu{service_name="checkout"}`: {
		"main.main;main.handle;encoding/json.Marshal;strconv.Itoa": 80_000_000,
		"main.main;main.idle": 20_000_000,
	},
	`samples{service_name="inventory"}`: {
		"main.main;inventory.Lookup": 7,
		"main.main;libc.so.6+0x2000": 3, // 0x4000 - 0x3000 + file offset 0x1000
	},
}

// testServer is a store behind the OTLP/HTTP handler.
type testServer struct {
	store *profiletest.Store
	eng   *query.Engine
	url   string // base URL
}

func newTestServer(tb testing.TB, opts Options) *testServer {
	tb.Helper()
	st := profiletest.OpenStore(tb)
	mux := http.NewServeMux()
	NewHandler(st.Ing, opts).Register(mux)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &testServer{store: st, eng: query.NewEngine(st.DB), url: srv.URL}
}

// encodeExport encodes a request as an OTLP/HTTP exporter does: protobuf
// or JSON through pdata's marshalers.
func encodeExport(tb testing.TB, pd pprofile.Profiles, json bool) []byte {
	tb.Helper()
	req := pprofileotlp.NewExportRequestFromProfiles(pd)
	var body []byte
	var err error
	if json {
		body, err = req.MarshalJSON()
	} else {
		body, err = req.MarshalProto()
	}
	if err != nil {
		tb.Fatalf("encode export request: %v", err)
	}
	return body
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// post sends body to path and returns the status, the response's content
// type and body.
func post(tb testing.TB, url, contentType string, header http.Header, body []byte) (int, string, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), out
}

// exportHTTP exports pd as an OTLP/HTTP exporter would and returns the
// decoded response; it fails the test on any status but 200.
func exportHTTP(tb testing.TB, url string, pd pprofile.Profiles, json, gz bool) pprofileotlp.ExportResponse {
	tb.Helper()
	body := encodeExport(tb, pd, json)
	ct := contentProtobuf
	if json {
		ct = contentJSON
	}
	h := http.Header{}
	if gz {
		body = gzipBytes(tb, body)
		h.Set("Content-Encoding", "gzip")
	}
	status, gotCT, out := post(tb, url+Paths[0], ct, h, body)
	if status != http.StatusOK {
		tb.Fatalf("export: status %d, body %q", status, out)
	}
	if gotCT != ct {
		tb.Errorf("response Content-Type %q, want %q", gotCT, ct)
	}
	return decodeResponse(tb, out, json)
}

func decodeResponse(tb testing.TB, body []byte, json bool) pprofileotlp.ExportResponse {
	tb.Helper()
	resp := pprofileotlp.NewExportResponse()
	var err error
	if json {
		err = resp.UnmarshalJSON(body)
	} else {
		err = resp.UnmarshalProto(body)
	}
	if err != nil {
		tb.Fatalf("decode export response %q: %v", body, err)
	}
	return resp
}

func request(q string) query.Request {
	return query.Request{Tenant: "anonymous", Query: q, Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)}
}

// flameStacks queries a flame graph and reads it back as stacks: each
// node's self value under its path of names.
func flameStacks(tb testing.TB, eng *query.Engine, r query.Request) (profiletest.Stacks, int64) {
	tb.Helper()
	fg, err := eng.FlameGraph(context.Background(), r, 1<<30)
	if err != nil {
		tb.Fatalf("flame graph of %s: %v", r.Query, err)
	}
	st := profiletest.Stacks{}
	var walk func(n *query.Node, path []string)
	walk = func(n *query.Node, path []string) {
		if n.Self != 0 {
			st[strings.Join(path, ";")] += n.Self
		}
		for _, c := range n.Children {
			walk(c, append(path[:len(path):len(path)], c.Name))
		}
	}
	walk(fg.Root, nil)
	return st, fg.Total
}

// topTable queries a top table as name -> {self, total}.
func topTable(tb testing.TB, eng *query.Engine, r query.Request) map[string][2]int64 {
	tb.Helper()
	top, err := eng.Top(context.Background(), r, "self", 0)
	if err != nil {
		tb.Fatalf("top of %s: %v", r.Query, err)
	}
	out := map[string][2]int64{}
	for _, e := range top.Entries {
		out[e.Name] = [2]int64{e.Self, e.Total}
	}
	return out
}

// seriesLabels lists the label sets of the series that r selects.
func seriesLabels(tb testing.TB, eng *query.Engine, r query.Request) []map[string]string {
	tb.Helper()
	ls, err := eng.SeriesLabels(context.Background(), r)
	if err != nil {
		tb.Fatalf("series of %s: %v", r.Query, err)
	}
	return ls
}
