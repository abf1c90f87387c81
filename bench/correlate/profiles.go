package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/hearth-profiler/hearth/bench/spans"
)

// The CPU profiles of the services that served the span workload's
// requests, one per pod and 10 s window, made from the same spans: each
// sample carries the pprof labels Hearth's instrument package gives a
// span's code (span_id, local_root_span_id, trace_id), so that the
// profiles join the spans sample by sample.
//
// A request's server span is on CPU for a share of the time its client
// spans leave it (the route's cpuOwn, 0.7 to 0.9), running its handler
// and below it the service's code; during a client span the handler runs
// the client library a clientCPU share of the time, under the client
// span's ID. Sample times are uniform in those intervals at the profile's
// rate (100 Hz). A few routes of the first two services run one known
// function, knownFunction, for a set share of their own samples: what the
// function-to-requests query must find. Every pod also has background
// samples without a span (the runtime's GC and scavenger).

const (
	samplePeriod  = 10 * time.Millisecond // 100 Hz, Go's default
	profileWindow = 10 * time.Second
	// clientCPU is the share of a client span's time its caller spends
	// on CPU (encoding, decoding, system calls).
	clientCPU = 0.12
	// backgroundCores is each pod's CPU outside requests.
	backgroundCores = 0.05
	// knownFunction is the function some routes run, in the service's
	// module; knownRegexp finds it, as running= takes it.
	knownFunction = "internal/risk.ScoreRequest"
	knownRegexp   = `risk\.ScoreRequest$`
)

// knownShares are the routes that run knownFunction, by rank of traffic
// in their service (0 the busiest), with the share of their own samples
// spent in it.
var knownShares = map[int]float64{1: 0.5, 3: 0.2, 0: 0.02}

// knownServices is how many of the profiled services (the first ones)
// have routes running knownFunction.
const knownServices = 2

func module(service string) string { return "github.com/acme/" + service }

// model is what the profiles are made from: the workload and the choices
// of the benchmark.
type model struct {
	w        *spans.Workload
	services []string // profiled, as in the workload's Config.Services
	target   string   // the service the queries are about
	route    string   // the span filter's http.route, a route of target
	minDur   time.Duration
	seed     uint64
	corpus   *corpusStacks
}

// routeKey names a route of a service: its span name, "METHOD TEMPLATE"
// (routes of different methods may share a template).
type routeKey struct {
	svc  int
	name string
}

type routeModel struct {
	template string
	cpuOwn   float64
	known    float64 // share of own samples in knownFunction
	corpus   int     // the corpus profile its code's stacks come from
	handler  string
}

// truth is what was sent, for checking the answers.
type truth struct {
	Profiles int64            `json:"profiles"`
	Bytes    int64            `json:"pprof_bytes"`
	Requests map[string]int64 `json:"requests"`   // server spans, per service
	Spans    map[string]int64 `json:"spans"`      // all spans, per service
	Samples  map[string]int64 `json:"samples"`    // per service, background included
	Rows     map[string]int64 `json:"pprof_rows"` // per service: distinct (stack, labels) per profile
	// Background is the samples without a span, per service.
	Background map[string]int64 `json:"background_samples"`
	// AfterEnd is the samples that would have fallen after the range,
	// not sent.
	AfterEnd int64 `json:"samples_after_end_not_sent"`
	Late     int64 `json:"late_samples"` // in a window already sent: a bug
	// The span filter's answer: the target's server spans of the route
	// longer than minDur, and the samples of them and of their client
	// spans.
	SelectedSpans   int64 `json:"selected_spans"`
	SelectedSamples int64 `json:"selected_samples"`
	// Running: per http.route, the spans whose own samples ran
	// knownFunction and their time in it (ns); of the target service, and
	// of every service.
	RunTarget map[string]runGroup `json:"running_target"`
	RunAll    map[string]runGroup `json:"running_all"`
}

type runGroup struct {
	Count int64 `json:"count"`
	CPUNs int64 `json:"cpu_ns"`
}

// profileOut is one profile to send.
type profileOut struct {
	service, pod, region string
	from                 int64 // Unix seconds
	prof                 *profile.Profile
	samples              int64
}

// request is a server span of a profiled service with its client spans,
// as read from a batch.
type request struct {
	svc         int
	pod, region string
	name, route string
	trace       [16]byte
	span        [8]byte
	start, end  int64
	calls       []call
}

type call struct {
	span       [8]byte
	start, end int64
	kind       string // a key of clientCode
}

// extract reads batch i's requests of the profiled services.
func (m *model) extract(i int, svcIdx map[string]int) (reqs []request, minStart int64) {
	td, st, _ := m.w.Traces(i)
	rss := td.ResourceSpans()
	for r := range rss.Len() {
		rs := rss.At(r)
		attrs := rs.Resource().Attributes()
		svc, ok := svcIdx[str(attrs, "service.name")]
		if !ok {
			continue
		}
		pod, region := str(attrs, "k8s.pod.name"), str(attrs, "cloud.region")
		byID := map[[8]byte]int{}
		first := len(reqs)
		sss := rs.ScopeSpans()
		for s := range sss.Len() {
			sps := sss.At(s).Spans()
			for k := range sps.Len() {
				sp := sps.At(k)
				if sp.Kind() != ptrace.SpanKindServer {
					continue
				}
				byID[sp.SpanID()] = len(reqs)
				reqs = append(reqs, request{svc: svc, pod: pod, region: region, name: sp.Name(), route: str(sp.Attributes(), "http.route"),
					trace: [16]byte(sp.TraceID()), span: [8]byte(sp.SpanID()), start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp())})
			}
		}
		for s := range sss.Len() {
			sps := sss.At(s).Spans()
			for k := range sps.Len() {
				sp := sps.At(k)
				if sp.Kind() == ptrace.SpanKindServer {
					continue
				}
				j, ok := byID[sp.ParentSpanID()]
				if !ok {
					continue
				}
				kind := str(sp.Attributes(), "db.system.name")
				if kind == "" {
					kind = "http"
				}
				reqs[j].calls = append(reqs[j].calls, call{span: [8]byte(sp.SpanID()), start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()), kind: kind})
			}
		}
		for j := first; j < len(reqs); j++ {
			slices.SortFunc(reqs[j].calls, func(a, b call) int { return cmp.Compare(a.start, b.start) })
		}
	}
	return reqs, st.MinStart
}

// str is the string attribute key of m, or "".
func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.Str()
	}
	return ""
}

// generator turns requests into samples and profiles.
type generator struct {
	m          *model
	start, end int64 // ns: the workload's range
	windows    int64
	svcIdx     map[string]int
	target     int
	routes     map[routeKey]*routeModel
	syms       *symtab
	stackIDs   map[stackKey]uint32
	pods       []map[string]int // per service: pod name to index
	podInfo    [][]podInfo
	open       map[int64]map[[2]int]map[aggKey]int64 // window → (service, pod) → samples
	next       int64                                 // the first window not yet emitted
	pcg        *rand.PCG
	rng        *rand.Rand
	t          truth
	emit       func(profileOut) error
	period     int64
}

type podInfo struct{ name, region string }

type stackKey struct {
	svc   int
	route string // span name
	known bool
	kind  string // "" for the service's own code, else a client library
	idx   int
}

type aggKey struct {
	stack uint32
	span  [8]byte
	root  [8]byte
	trace [16]byte
}

func newGenerator(m *model, emit func(profileOut) error) (*generator, error) {
	cfg := m.w.Config()
	g := &generator{m: m, end: cfg.End.UnixNano(), svcIdx: map[string]int{}, routes: map[routeKey]*routeModel{},
		syms: newSymtab(), stackIDs: map[stackKey]uint32{}, open: map[int64]map[[2]int]map[aggKey]int64{},
		pcg: rand.NewPCG(0, 0), emit: emit, period: int64(samplePeriod), target: -1}
	g.rng = rand.New(g.pcg)
	g.start = g.end - int64(cfg.Window)
	if cfg.Window <= 0 || cfg.Window%profileWindow != 0 {
		return nil, fmt.Errorf("window %v: want a positive multiple of %v", cfg.Window, profileWindow)
	}
	g.windows = int64(cfg.Window / profileWindow)
	info := map[string]spans.ServiceInfo{}
	for _, si := range m.w.ServiceInfo() {
		info[si.Name] = si
	}
	for k, name := range m.services {
		si, ok := info[name]
		if !ok || si.Share == 0 {
			return nil, fmt.Errorf("service %q: not among the workload's services", name)
		}
		g.svcIdx[name] = k
		if name == m.target {
			g.target = k
		}
		for rank, r := range si.Routes {
			h := hash64(m.seed, name, r.Method, r.Template)
			rm := &routeModel{template: r.Template, cpuOwn: 0.7 + 0.2*float64(h%1000)/1000,
				corpus: int((h >> 10) % uint64(len(m.corpus.work))), handler: handlerName(module(name), r.Method, r.Template)}
			if k < knownServices {
				rm.known = knownShares[rank]
			}
			g.routes[routeKey{k, r.Method + " " + r.Template}] = rm
		}
	}
	if g.target < 0 {
		return nil, fmt.Errorf("service %q: not among the profiled services %s", m.target, strings.Join(m.services, ", "))
	}
	g.pods = make([]map[string]int, len(m.services))
	g.podInfo = make([][]podInfo, len(m.services))
	for k := range g.pods {
		g.pods[k] = map[string]int{}
	}
	g.t = truth{Requests: map[string]int64{}, Spans: map[string]int64{}, Samples: map[string]int64{}, Rows: map[string]int64{},
		Background: map[string]int64{}, RunTarget: map[string]runGroup{}, RunAll: map[string]runGroup{}}
	return g, nil
}

func hash64(seed uint64, parts ...string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// run makes the profiles of every batch, with workers reading batches in
// parallel, and emits them window by window, in time order.
func (g *generator) run(ctx context.Context, workers int) (truth, error) {
	batches := g.m.w.Batches()
	workers = max(1, min(workers, batches))
	type result struct {
		reqs     []request
		minStart int64
	}
	ctx, cancel := context.WithCancel(ctx)
	chans := make([]chan result, workers)
	var wg sync.WaitGroup
	for j := range chans {
		chans[j] = make(chan result, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(chans[j])
			for i := j; i < batches; i += workers {
				reqs, ms := g.m.extract(i, g.svcIdx)
				select {
				case chans[j] <- result{reqs, ms}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	// On an early return the workers must stop before they are waited
	// for.
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range batches {
		r, ok := <-chans[i%workers]
		if !ok {
			return g.t, ctx.Err()
		}
		// No request of this batch or a later one starts before
		// minStart: the windows that end by then are complete.
		if err := g.emitUntil((r.minStart - g.start) / int64(profileWindow)); err != nil {
			return g.t, err
		}
		for j := range r.reqs {
			g.request(&r.reqs[j])
		}
	}
	if err := g.emitUntil(g.windows); err != nil {
		return g.t, err
	}
	if g.t.Late > 0 {
		return g.t, fmt.Errorf("%d samples fell in windows already sent: the batches are not in time order", g.t.Late)
	}
	return g.t, nil
}

func (g *generator) podOf(svc int, name, region string) int {
	p, ok := g.pods[svc][name]
	if !ok {
		p = len(g.podInfo[svc])
		g.pods[svc][name] = p
		g.podInfo[svc] = append(g.podInfo[svc], podInfo{name, region})
	}
	return p
}

// request adds the samples of one request.
func (g *generator) request(r *request) {
	rm := g.routes[routeKey{r.svc, r.name}]
	if rm == nil {
		panic(fmt.Sprintf("request %q of service %d: no such route in the fleet", r.name, r.svc))
	}
	svcName := g.m.services[r.svc]
	pod := g.podOf(r.svc, r.pod, r.region)
	g.pcg.Seed(g.m.seed^0xc0de, binary.BigEndian.Uint64(r.span[:]))
	g.t.Requests[svcName]++
	g.t.Spans[svcName] += int64(1 + len(r.calls))

	var accepted, known int64
	corpus := g.m.corpus.work[rm.corpus]
	own := func(a, b int64) {
		for range poisson(g.rng, rm.cpuOwn*float64(b-a)/float64(g.period)) {
			inKnown := rm.known > 0 && g.rng.Float64() < rm.known
			idx := corpus.pick(g.rng.Float64())
			st := g.stack(stackKey{svc: r.svc, route: r.name, known: inKnown, idx: idx}, rm, corpus.stacks[idx], nil)
			if g.sample(r.svc, pod, a+g.rng.Int64N(max(1, b-a)), st, r.span, r.span, r.trace) {
				accepted++
				if inKnown {
					known++
				}
			}
		}
	}
	at := r.start
	for _, c := range r.calls {
		if c.start > at {
			own(at, c.start)
		}
		code := clientCode[c.kind]
		for range poisson(g.rng, clientCPU*float64(c.end-c.start)/float64(g.period)) {
			idx := g.rng.IntN(len(code))
			st := g.stack(stackKey{svc: r.svc, route: r.name, kind: c.kind, idx: idx}, rm, nil, code[idx])
			if g.sample(r.svc, pod, c.start+g.rng.Int64N(max(1, c.end-c.start)), st, c.span, r.span, r.trace) {
				accepted++
			}
		}
		at = max(at, c.end)
	}
	if r.end > at {
		own(at, r.end)
	}

	if r.svc == g.target && r.route == g.m.route && r.end-r.start > int64(g.m.minDur) {
		g.t.SelectedSpans++
		g.t.SelectedSamples += accepted
	}
	if known > 0 {
		add := func(m map[string]runGroup) {
			rg := m[r.route]
			rg.Count++
			rg.CPUNs += known * g.period
			m[r.route] = rg
		}
		add(g.t.RunAll)
		if r.svc == g.target {
			add(g.t.RunTarget)
		}
	}
}

// stack interns the stack of key: under the server's frames and the
// route's handler, either the service's own code (work, from the corpus;
// through knownFunction when key.known) or a client library's (client,
// root first).
func (g *generator) stack(key stackKey, rm *routeModel, work []frame, client []string) uint32 {
	if id, ok := g.stackIDs[key]; ok {
		return id
	}
	var locs []uint64 // leaf first
	mod := module(g.m.services[key.svc])
	for _, f := range work {
		locs = append(locs, g.syms.loc(rename(f, mod+"/internal/core")...))
	}
	for i := len(client) - 1; i >= 0; i-- {
		locs = append(locs, g.syms.loc(client[i]))
	}
	if key.known {
		locs = append(locs, g.syms.loc(mod+"/"+knownFunction))
	}
	locs = append(locs, g.syms.loc(rm.handler))
	for i := len(serverFrames) - 1; i >= 0; i-- {
		locs = append(locs, g.syms.loc(serverFrames[i]))
	}
	id := g.syms.stack(locs)
	g.stackIDs[key] = id
	return id
}

// sample adds one sample at t (ns) to its pod's window, unless t is past
// the range; it says whether it was kept.
func (g *generator) sample(svc, pod int, t int64, stack uint32, span, root [8]byte, trace [16]byte) bool {
	if t >= g.end {
		g.t.AfterEnd++
		return false
	}
	w := (t - g.start) / int64(profileWindow)
	if w < g.next {
		g.t.Late++
		return false
	}
	byPod := g.open[w]
	if byPod == nil {
		byPod = map[[2]int]map[aggKey]int64{}
		g.open[w] = byPod
	}
	agg := byPod[[2]int{svc, pod}]
	if agg == nil {
		agg = map[aggKey]int64{}
		byPod[[2]int{svc, pod}] = agg
	}
	agg[aggKey{stack: stack, span: span, root: root, trace: trace}]++
	g.t.Samples[g.m.services[svc]]++
	return true
}

// emitUntil emits the profiles of windows before w: one per pod seen so
// far, its background samples added.
func (g *generator) emitUntil(w int64) error {
	for ; g.next < min(w, g.windows); g.next++ {
		byPod := g.open[g.next]
		delete(g.open, g.next)
		for svc := range g.m.services {
			for pod := range g.podInfo[svc] {
				agg := byPod[[2]int{svc, pod}]
				if agg == nil {
					agg = map[aggKey]int64{}
				}
				g.background(svc, pod, g.next, agg)
				if err := g.emit(g.profile(svc, pod, g.next, agg)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (g *generator) background(svc, pod int, w int64, agg map[aggKey]int64) {
	g.pcg.Seed(g.m.seed^0xb9, uint64(svc)<<48|uint64(pod)<<32|uint64(w))
	bg := g.m.corpus.background
	n := poisson(g.rng, backgroundCores*float64(profileWindow)/float64(g.period))
	for range n {
		idx := bg.pick(g.rng.Float64())
		st, ok := g.stackIDs[stackKey{svc: -1, idx: idx}]
		if !ok {
			var locs []uint64
			for _, f := range bg.stacks[idx] {
				locs = append(locs, g.syms.loc(f...))
			}
			st = g.syms.stack(locs)
			g.stackIDs[stackKey{svc: -1, idx: idx}] = st
		}
		agg[aggKey{stack: st}]++
	}
	name := g.m.services[svc]
	g.t.Samples[name] += int64(n)
	g.t.Background[name] += int64(n)
}

// profile builds the pprof of one pod's window.
func (g *generator) profile(svc, pod int, w int64, agg map[aggKey]int64) profileOut {
	keys := make([]aggKey, 0, len(agg))
	var samples int64
	for k, n := range agg {
		keys = append(keys, k)
		samples += n
	}
	slices.SortFunc(keys, func(a, b aggKey) int {
		if a.stack != b.stack {
			return cmp.Compare(a.stack, b.stack)
		}
		return slices.Compare(a.span[:], b.span[:])
	})
	from := g.start + w*int64(profileWindow)
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		DefaultSampleType: "cpu",
		PeriodType:        &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:            g.period,
		TimeNanos:         from,
		DurationNanos:     int64(profileWindow),
	}
	locs := map[uint64]*profile.Location{}
	funcs := map[uint64]*profile.Function{}
	location := func(id uint64) *profile.Location {
		if l, ok := locs[id]; ok {
			return l
		}
		l := &profile.Location{ID: id, Address: 0x400000 + id*64}
		for _, fid := range g.syms.locFuncs[id-1] {
			f, ok := funcs[fid]
			if !ok {
				name := g.syms.funcName[fid-1]
				f = &profile.Function{ID: fid, Name: name, SystemName: name, Filename: sourceFile(name)}
				funcs[fid] = f
				p.Function = append(p.Function, f)
			}
			l.Line = append(l.Line, profile.Line{Function: f, Line: int64(10 + fid%400)})
		}
		locs[id] = l
		p.Location = append(p.Location, l)
		return l
	}
	for _, k := range keys {
		n := agg[k]
		s := &profile.Sample{Value: []int64{n, n * g.period}}
		for _, id := range g.syms.stackLoc[k.stack] {
			s.Location = append(s.Location, location(id))
		}
		if k.span != ([8]byte{}) {
			s.Label = map[string][]string{
				"span_id":            {hex.EncodeToString(k.span[:])},
				"local_root_span_id": {hex.EncodeToString(k.root[:])},
				"trace_id":           {hex.EncodeToString(k.trace[:])},
			}
		}
		p.Sample = append(p.Sample, s)
	}
	name := g.m.services[svc]
	g.t.Profiles++
	g.t.Rows[name] += int64(len(keys))
	pi := g.podInfo[svc][pod]
	return profileOut{service: name, pod: pi.name, region: pi.region, from: from / 1e9, prof: p, samples: samples}
}

// sourceFile is a plausible file for a function: its package's path.
func sourceFile(fn string) string {
	pkg := fn
	if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
		if j := strings.IndexByte(pkg[i:], '.'); j >= 0 {
			pkg = pkg[:i+j]
		}
	} else if j := strings.IndexByte(pkg, '.'); j >= 0 {
		pkg = pkg[:j]
	}
	return pkg + "/" + pkg[strings.LastIndexByte(pkg, '/')+1:] + ".go"
}

// poisson draws from a Poisson distribution of mean lambda: by counting
// for small means, by the normal approximation above 30.
func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
