// Package spans makes a span workload for the events benchmarks: the
// traffic of 50 HTTP services as their OpenTelemetry SDKs would send it,
// deterministic from a seed, encoded as OTLP ExportTraceServiceRequest
// messages of about N spans each.
//
// Each request is a server span (15 attributes of OpenTelemetry's HTTP
// semantic conventions, user.id and order.id among them) with 1 to 4
// client spans below it in the same trace: SQL statements, cache reads
// and HTTP calls to other services. Services run six pods each (one OTLP
// resource per pod, with service, host, Kubernetes and cloud attributes),
// five in big regions and one, in eu-west-3, that serves 2 % of every
// service's requests. Durations are log-normal per route; the requests
// that match Config.Slow (by default those served in eu-west-3) take
// Slow.Factor times longer, and about 1 % fail with a status message.
//
// Batch i is made from the seed and i alone, so batches can be made in
// parallel and in any order, and the same configuration gives the same
// bytes. See bench/README.md for the attributes and their
// distributions.
package spans

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Config says which workload to make.
type Config struct {
	// Seed draws the fleet and every request.
	Seed int64 `json:"seed"`
	// Spans is the workload's size: it has ceil(Spans/BatchSpans)
	// batches, so about this many spans.
	Spans int64 `json:"spans"`
	// BatchSpans is the spans of one export request. A batch holds whole
	// requests (a server span and its client spans), so it has from
	// BatchSpans to BatchSpans+4 spans.
	BatchSpans int `json:"batch_spans"`
	// End and Window place the requests: batch i of B starts its requests
	// in the i-th of B equal slices of [End-Window, End), so the batches
	// are in time order. A zero Window stamps each batch with the clock
	// when it is made (requests of the last second), for live sending.
	End    time.Time     `json:"end"`
	Window time.Duration `json:"window"`
	// Slow is the slow minority.
	Slow Slow `json:"slow"`
	// Services, when set, are the only services that serve requests,
	// with the fleet's weights between them: a workload of a few
	// services at the rate of a busier fleet. Their client spans still
	// call other services' routes.
	Services []string `json:"services,omitempty"`
	// ErrorRate is the mean share of requests that fail (status Error, a
	// 5xx code and a status message, on the server span and on the client
	// span that failed). Routes differ around it.
	ErrorRate float64 `json:"error_rate"`
}

// Slow makes the requests that carry one attribute value slower.
type Slow struct {
	// Attr is the scoped key, as a filter names it: "resource.KEY" for
	// any resource attribute (the pod's), or one of SlowSpanKeys.
	// Empty: no slow minority.
	Attr  string `json:"attr"`
	Value string `json:"value"`
	// Factor multiplies the duration of the matching requests' spans.
	Factor float64 `json:"factor"`
}

// String is the Slow as ParseSlow reads it.
func (s Slow) String() string {
	if s.Attr == "" {
		return "none"
	}
	return s.Attr + "=" + s.Value
}

// SlowSpanKeys are the span attributes a slow minority may be chosen by:
// those drawn before a request's duration.
var SlowSpanKeys = []string{"span.app.customer.tier", "span.http.route", "span.http.request.method",
	"span.network.protocol.version", "span.user_agent.original", "span.user.id"}

// DefaultSlow is the slow minority of the benchmarks: the requests served
// in eu-west-3 (2 % of them) take 8 times as long.
var DefaultSlow = Slow{Attr: "resource.cloud.region", Value: SmallRegion, Factor: 8}

// ParseSlow reads "SCOPE.KEY=VALUE" (or "none") with the factor.
func ParseSlow(s string, factor float64) (Slow, error) {
	if s == "" || s == "none" {
		return Slow{}, nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return Slow{}, fmt.Errorf("slow minority %q: want SCOPE.KEY=VALUE, e.g. resource.cloud.region=eu-west-3", s)
	}
	if !(factor > 0) {
		return Slow{}, fmt.Errorf("slow factor %v: want a positive number", factor)
	}
	return Slow{Attr: k, Value: v, Factor: factor}, nil
}

// DefaultConfig is the benchmarks' workload of n spans ending at end.
func DefaultConfig(n int64, end time.Time, window time.Duration) Config {
	return Config{Seed: 1, Spans: n, BatchSpans: 1000, End: end, Window: window, Slow: DefaultSlow, ErrorRate: 0.01}
}

// Workload makes the batches of a Config.
type Workload struct {
	cfg     Config
	fleet   *fleet
	batches int
	// slowPod[k][p] says whether pod p of service k matches a resource
	// slow attribute.
	slowPod [][]bool
	// serviceIdx are the fleet indexes of the services that serve
	// requests, serviceCum their cumulative weights.
	serviceIdx []int
	serviceCum []float64
}

// New checks cfg and draws its fleet.
func New(cfg Config) (*Workload, error) {
	if cfg.Spans < 1 || cfg.BatchSpans < 1 {
		return nil, fmt.Errorf("workload of %d spans in batches of %d: both must be positive", cfg.Spans, cfg.BatchSpans)
	}
	if cfg.Window < 0 {
		return nil, fmt.Errorf("window %v: must not be negative", cfg.Window)
	}
	if cfg.ErrorRate < 0 || cfg.ErrorRate > 0.5 {
		return nil, fmt.Errorf("error rate %v: want 0 to 0.5", cfg.ErrorRate)
	}
	w := &Workload{cfg: cfg, fleet: newFleet(uint64(cfg.Seed), cfg.ErrorRate)}
	b := (cfg.Spans + int64(cfg.BatchSpans) - 1) / int64(cfg.BatchSpans)
	if b > math.MaxInt32 {
		return nil, fmt.Errorf("workload of %d batches: too many", b)
	}
	w.batches = int(b)
	if err := w.pickServices(); err != nil {
		return nil, err
	}
	if err := w.checkSlow(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Workload) checkSlow() error {
	s := w.cfg.Slow
	if s.Attr == "" {
		return nil
	}
	if !(s.Factor > 0) {
		return fmt.Errorf("slow minority %s: factor %v must be positive", s, s.Factor)
	}
	if key, ok := strings.CutPrefix(s.Attr, "resource."); ok {
		found, any := false, false
		for _, svc := range w.fleet.services {
			var row []bool
			for _, p := range svc.pods {
				i := slices.IndexFunc(p.attrs, func(a kv) bool { return a.key == key })
				found = found || i >= 0
				m := i >= 0 && p.attrs[i].value() == s.Value
				any = any || m
				row = append(row, m)
			}
			w.slowPod = append(w.slowPod, row)
		}
		if !found {
			var keys []string
			for _, a := range w.fleet.services[0].pods[0].attrs {
				keys = append(keys, "resource."+a.key)
			}
			return fmt.Errorf("slow minority %s: no resource attribute %q; resource attributes are %s", s, key, strings.Join(keys, ", "))
		}
		if !any {
			return fmt.Errorf("slow minority %s: no pod has %s = %q", s, s.Attr, s.Value)
		}
		return nil
	}
	if !slices.Contains(SlowSpanKeys, s.Attr) {
		return fmt.Errorf("slow minority %s: %q is not resource.KEY nor one of %s", s, s.Attr, strings.Join(SlowSpanKeys, ", "))
	}
	return nil
}

func (a kv) value() string {
	if a.isInt {
		return strconv.FormatInt(a.num, 10)
	}
	return a.str
}

// Config is the workload's configuration.
func (w *Workload) Config() Config { return w.cfg }

// Batches is the number of batches.
func (w *Workload) Batches() int { return w.batches }

// Routes is the number of distinct (service, route) pairs.
func (w *Workload) Routes() int { return w.fleet.routes }

// RouteTemplates are the distinct http.route values, sorted.
func (w *Workload) RouteTemplates() []string {
	var out []string
	for _, s := range w.fleet.services {
		for _, r := range s.routes {
			out = append(out, r.template)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SpanIDs are the span IDs (lowercase hex) of trace s, made again from
// its batch.
func (w *Workload) SpanIDs(s TraceSample) []string {
	td, _, _ := w.Traces(s.Batch)
	var ids []string
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			sps := sss.At(j).Spans()
			for k := range sps.Len() {
				if sp := sps.At(k); sp.TraceID().String() == s.TraceID {
					ids = append(ids, sp.SpanID().String())
				}
			}
		}
	}
	return ids
}

// Services is the number of services.
func (w *Workload) Services() int { return len(w.fleet.services) }

// Stats counts what a batch, or a whole workload, holds.
type Stats struct {
	Batches      int   `json:"batches"`
	Requests     int64 `json:"requests"` // server spans
	Spans        int64 `json:"spans"`
	SlowRequests int64 `json:"slow_requests"`
	SlowSpans    int64 `json:"slow_spans"`
	ErrorSpans   int64 `json:"error_spans"` // spans with status Error
	// MinStart and MaxEnd bound the spans, in Unix nanoseconds.
	MinStart int64 `json:"min_start_unix_nano"`
	MaxEnd   int64 `json:"max_end_unix_nano"`
	Bytes    int64 `json:"bytes,omitempty"` // of the encoded requests
}

// Add adds o's counts to s.
func (s *Stats) Add(o Stats) {
	if s.Batches == 0 || o.MinStart < s.MinStart {
		s.MinStart = o.MinStart
	}
	s.MaxEnd = max(s.MaxEnd, o.MaxEnd)
	s.Batches += o.Batches
	s.Requests += o.Requests
	s.Spans += o.Spans
	s.SlowRequests += o.SlowRequests
	s.SlowSpans += o.SlowSpans
	s.ErrorSpans += o.ErrorSpans
	s.Bytes += o.Bytes
}

// TraceSample is one trace of a batch, for the benchmarks' lookups by ID.
type TraceSample struct {
	Batch   int    `json:"batch"`
	TraceID string `json:"trace_id"` // lowercase hex
	Spans   int    `json:"spans"`
	Start   int64  `json:"start_unix_nano"`
	End     int64  `json:"end_unix_nano"`
	Service string `json:"service"`
	Route   string `json:"route"`
}

// Batch is one encoded export request.
type Batch struct {
	Index int
	Stats Stats
	// First is the batch's first trace.
	First TraceSample
	// Body is the ExportTraceServiceRequest, protobuf.
	Body []byte
}

// Encode makes batch i as the protobuf bytes an OTLP exporter sends.
func (w *Workload) Encode(i int) (Batch, error) {
	td, st, first := w.Traces(i)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return Batch{}, fmt.Errorf("encode batch %d: %w", i, err)
	}
	st.Bytes = int64(len(body))
	return Batch{Index: i, Stats: st, First: first, Body: body}, nil
}

// ErrRange is returned for a batch index outside the workload.
var ErrRange = errors.New("batch index out of range")

// batchRand is batch i's random source: the seed and i, nothing else.
func (w *Workload) batchRand(i int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(w.cfg.Seed)^0x5eed, uint64(i)*0x9e3779b97f4a7c15+1))
}

// Traces makes batch i (0 <= i < Batches()) as pdata, with its counts
// and its first trace.
func (w *Workload) Traces(i int) (ptrace.Traces, Stats, TraceSample) {
	if i < 0 || i >= w.batches {
		panic(fmt.Sprintf("spans: batch %d of %d: %v", i, w.batches, ErrRange))
	}
	rng := w.batchRand(i)
	b := newBatchBuilder(w, rng)
	b.index = i
	var sliceStart, sliceLen float64
	if w.cfg.Window > 0 {
		end := float64(w.cfg.End.UnixNano())
		win := float64(w.cfg.Window)
		sliceLen = win / float64(w.batches)
		sliceStart = end - win + sliceLen*float64(i)
	} else {
		// Live: requests of the last second, as an exporter sends them
		// shortly after they end.
		sliceLen = float64(time.Second)
		sliceStart = float64(time.Now().UnixNano()) - 2*sliceLen
	}
	// Orders are numbered as they are made, about one per four requests;
	// a request concerns a recent order or, less often, an older one.
	perBatch := max(1, w.cfg.BatchSpans/14)
	b.orderBase = 10_000_000 + int64(i)*int64(perBatch)
	b.orderSpan = perBatch
	for b.st.Spans < int64(w.cfg.BatchSpans) {
		start := int64(sliceStart + rng.Float64()*sliceLen)
		b.request(start)
	}
	b.st.Batches = 1
	return b.td, b.st, b.first
}

// batchBuilder makes one batch's requests into pdata.
type batchBuilder struct {
	w    *Workload
	rng  *rand.Rand
	td   ptrace.Traces
	st   Stats
	user *rand.Zipf
	item *rand.Zipf
	// pods holds the spans of each (service, pod) in the batch, made
	// when first needed.
	pods      map[[2]int]*podSpans
	index     int
	first     TraceSample
	orderBase int64
	orderSpan int
}

func newBatchBuilder(w *Workload, rng *rand.Rand) *batchBuilder {
	return &batchBuilder{
		w: w, rng: rng, td: ptrace.NewTraces(),
		// A million users, the busiest a few thousand times as active
		// as most.
		user: rand.NewZipf(rng, 1.1, 20, 999_999),
		item: rand.NewZipf(rng, 1.2, 10, 99_999),
		pods: map[[2]int]*podSpans{},
	}
}

func (b *batchBuilder) scopeSpans(svc, p, scope int) ptrace.ScopeSpans {
	key := [2]int{svc, p}
	ps, ok := b.pods[key]
	if !ok {
		ps = &podSpans{rs: b.td.ResourceSpans().AppendEmpty()}
		ps.rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		attrs := ps.rs.Resource().Attributes()
		pd := &b.w.fleet.services[svc].pods[p]
		attrs.EnsureCapacity(len(pd.attrs))
		for _, a := range pd.attrs {
			put(attrs, a)
		}
		b.pods[key] = ps
	}
	if !ps.has[scope] {
		s := ps.rs.ScopeSpans().AppendEmpty()
		s.Scope().SetName(scopes[scope].name)
		s.Scope().SetVersion(scopes[scope].version)
		ps.ss[scope], ps.has[scope] = s, true
	}
	return ps.ss[scope]
}

// podSpans is one pod's ResourceSpans in a batch, with its ScopeSpans
// per instrumentation scope.
type podSpans struct {
	rs  ptrace.ResourceSpans
	ss  [len(scopes)]ptrace.ScopeSpans
	has [len(scopes)]bool
}

func put(m pcommon.Map, a kv) {
	if a.isInt {
		m.PutInt(a.key, a.num)
	} else {
		m.PutStr(a.key, a.str)
	}
}

func (b *batchBuilder) traceID() pcommon.TraceID {
	var id [16]byte
	putUint64(id[:8], b.rng.Uint64())
	putUint64(id[8:], b.rng.Uint64())
	return id
}

func (b *batchBuilder) spanID() pcommon.SpanID {
	var id [8]byte
	for id == [8]byte{} {
		putUint64(id[:], b.rng.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

var serverErrors = [...]struct {
	code int64
	msg  string // %s: the failing call's target
}{
	{500, "pq: deadlock detected"},
	{500, "runtime error: invalid memory address or nil pointer dereference"},
	{502, "upstream %s: unexpected EOF"},
	{503, "upstream %s: connection refused"},
	{504, "context deadline exceeded"},
}

var clientErrors = [...]int64{400, 401, 403, 404, 404, 404, 409, 422, 429}

// request adds one request starting at start (Unix nanoseconds): its
// server span and client spans.
func (b *batchBuilder) request(start int64) {
	rng, f := b.rng, b.w.fleet
	k := b.w.pickService(rng.Float64())
	svc := f.services[k]
	p := pick(svc.podCum, rng.Float64())
	r := svc.routes[pick(svc.routeCum, rng.Float64())]

	tier := customerTiers[len(customerTiers)-1].name
	u := rng.Float64()
	for _, t := range customerTiers {
		if u < t.share {
			tier = t.name
			break
		}
		u -= t.share
	}
	user := int64(b.user.Uint64()) + 1
	userID := "u-" + strconv.FormatInt(user, 10)
	order := b.orderBase + int64(rng.IntN(b.orderSpan))
	if rng.IntN(3) == 0 {
		order -= int64(math.Exp(rng.Float64() * math.Log(200_000)))
	}
	ua := userAgents[pick(uaCum[:], rng.Float64())]
	proto := "1.1"
	if rng.IntN(10) < 3 {
		proto = "2"
	}
	path := r.template
	switch r.idKind {
	case 1:
		path = strings.Replace(path, "{id}", strconv.FormatInt(order, 10), 1)
	case 2:
		path = strings.Replace(path, "{id}", strconv.FormatInt(user, 10), 1)
	case 3:
		path = strings.Replace(path, "{id}", strconv.FormatUint(b.item.Uint64()+1, 10), 1)
	}
	slow := b.matchSlow(k, p, r, tier, proto, ua, userID)

	dur := r.median * math.Exp(r.sigma*rng.NormFloat64())
	if slow {
		dur *= b.w.cfg.Slow.Factor
	}
	end := start + int64(dur)

	// The result: an error (5xx) on the server span and on its last
	// call, or a 2xx/3xx/4xx that is no error of the server's.
	failed := rng.Float64() < r.errRate
	var status int64
	var errMsg string
	lastTarget := ""
	if len(r.calls) > 0 {
		c := r.calls[len(r.calls)-1]
		lastTarget = strings.TrimSuffix(c.attrs[slices.IndexFunc(c.attrs, func(a kv) bool { return a.key == "server.address" })].str, ".svc.cluster.local")
	}
	if failed {
		e := serverErrors[rng.IntN(len(serverErrors))]
		status = e.code
		errMsg = e.msg
		if strings.Contains(errMsg, "%s") {
			errMsg = fmt.Sprintf(errMsg, lastTarget)
		}
	} else if rng.IntN(100) < 3 {
		status = clientErrors[rng.IntN(len(clientErrors))]
	} else {
		switch r.method {
		case "POST":
			status = 201
		case "DELETE":
			status = 204
		case "GET":
			status = 200
			if rng.IntN(100) < 3 {
				status = 304
			}
		default:
			status = 200
		}
	}
	var reqBody int64
	if r.bodyMean > 0 {
		reqBody = int64(r.bodyMean * math.Exp(0.5*rng.NormFloat64()))
	}
	respBody := int64(0)
	if status != 204 && status != 304 {
		respBody = int64(1800 * math.Exp(0.8*rng.NormFloat64()))
	}
	h := uint64(user) * 2654435761
	client := fmt.Sprintf("10.%d.%d.%d", 64+(h>>16)&63, (h>>8)&255, 1+h&253)

	tid := b.traceID()
	sid := b.spanID()
	ss := b.scopeSpans(k, p, scopeHTTP)
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(tid)
	sp.SetSpanID(sid)
	sp.SetName(r.name)
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(end))
	a := sp.Attributes()
	a.EnsureCapacity(15)
	a.PutStr("http.request.method", r.method)
	a.PutStr("http.route", r.template)
	a.PutStr("url.path", path)
	a.PutStr("url.scheme", "http")
	a.PutInt("http.response.status_code", status)
	a.PutStr("server.address", r.host)
	a.PutInt("server.port", 8080)
	a.PutStr("user_agent.original", ua)
	a.PutStr("client.address", client)
	a.PutStr("network.protocol.version", proto)
	a.PutInt("http.request.body.size", reqBody)
	a.PutInt("http.response.body.size", respBody)
	a.PutStr("app.customer.tier", tier)
	a.PutStr("user.id", userID)
	a.PutStr("order.id", "ord-"+strconv.FormatInt(order, 10))
	if failed {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(errMsg)
		ev := sp.Events().AppendEmpty()
		ev.SetName("exception")
		ev.SetTimestamp(pcommon.Timestamp(end - 1000))
		ev.Attributes().PutStr("exception.type", "*errors.errorString")
		ev.Attributes().PutStr("exception.message", errMsg)
		b.st.ErrorSpans++
	}

	// The calls run one after another inside the server span, taking
	// half to nine tenths of it.
	n := len(r.calls)
	var ws [4]float64
	var wsum float64
	for j := range n {
		ws[j] = 0.3 + rng.Float64()
		wsum += ws[j]
	}
	busy := dur * (0.5 + 0.4*rng.Float64())
	gap := (dur - busy) / float64(n+1)
	at := float64(start)
	for j, c := range r.calls {
		at += gap
		cd := busy * ws[j] / wsum
		cs := b.scopeSpans(k, p, c.scope).Spans().AppendEmpty()
		cs.SetTraceID(tid)
		cs.SetSpanID(b.spanID())
		cs.SetParentSpanID(sid)
		cs.SetName(c.name)
		cs.SetKind(ptrace.SpanKindClient)
		cs.SetStartTimestamp(pcommon.Timestamp(int64(at)))
		cs.SetEndTimestamp(pcommon.Timestamp(int64(at + cd)))
		at += cd
		ca := cs.Attributes()
		ca.EnsureCapacity(len(c.attrs) + 2)
		for _, x := range c.attrs {
			put(ca, x)
		}
		callFailed := failed && j == n-1
		if c.kind == callHTTP {
			tp := strings.Replace(c.target.template, "{id}", strconv.FormatUint(b.item.Uint64()+1, 10), 1)
			ca.PutStr("url.full", "http://"+c.target.host+":8080"+tp)
			code := int64(200)
			if callFailed {
				code = 503
			}
			ca.PutInt("http.response.status_code", code)
		}
		if callFailed {
			cs.Status().SetCode(ptrace.StatusCodeError)
			cs.Status().SetMessage(errMsg)
			b.st.ErrorSpans++
		}
	}

	spans := int64(1 + n)
	b.st.Requests++
	b.st.Spans += spans
	if slow {
		b.st.SlowRequests++
		b.st.SlowSpans += spans
	}
	if b.st.Requests == 1 || start < b.st.MinStart {
		b.st.MinStart = start
	}
	b.st.MaxEnd = max(b.st.MaxEnd, end)
	if b.st.Requests == 1 {
		b.first = TraceSample{Batch: b.index, TraceID: tid.String(), Spans: int(spans), Start: start, End: end, Service: svc.name, Route: r.template}
	}
}

// uaCum weighs the user agents: browsers first, then apps and tools.
var uaCum = func() (c [len(userAgents)]float64) {
	w := [len(userAgents)]float64{30, 18, 16, 6, 10, 8, 5, 3, 2, 1, 0.5, 0.5}
	var s float64
	for i, x := range w {
		s += x
		c[i] = s
	}
	return c
}()

// matchSlow says whether a request is in the slow minority.
func (b *batchBuilder) matchSlow(k, p int, r *route, tier, proto, ua, user string) bool {
	s := b.w.cfg.Slow
	if s.Attr == "" {
		return false
	}
	if b.w.slowPod != nil {
		return b.w.slowPod[k][p]
	}
	var v string
	switch s.Attr {
	case "span.app.customer.tier":
		v = tier
	case "span.http.route":
		v = r.template
	case "span.http.request.method":
		v = r.method
	case "span.network.protocol.version":
		v = proto
	case "span.user_agent.original":
		v = ua
	case "span.user.id":
		v = user
	}
	return v == s.Value
}
