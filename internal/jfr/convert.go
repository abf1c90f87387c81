package jfr

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"

	gpprof "github.com/google/pprof/profile"
	"github.com/grafana/jfr-parser/parser"
	"github.com/grafana/jfr-parser/parser/types"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// kind is one of the profiles that the events of a recording make.
type kind uint8

const (
	kindCPU kind = iota
	kindWall
	kindAllocInTLAB
	kindAllocOutsideTLAB
	kindAllocSample
	kindLock
	kindPark
	kindLive
	kindMalloc
	numKinds
)

// kindSpec names the profile of a kind as Pyroscope names it.
type kindSpec struct {
	// name is Pyroscope's __name__ of the profile, and its NameKind.
	name        string
	sampleTypes [][2]string // type, unit
	periodType  [2]string   // type, unit; empty for none
	// timed says that an event counts samples, which the sampling period
	// turns into nanoseconds.
	timed bool
}

var kindSpecs = [numKinds]kindSpec{
	kindCPU:              {"process_cpu", [][2]string{{"cpu", "nanoseconds"}}, [2]string{"cpu", "nanoseconds"}, true},
	kindWall:             {"wall", [][2]string{{"wall", "nanoseconds"}}, [2]string{"wall", "nanoseconds"}, true},
	kindAllocInTLAB:      {"memory", [][2]string{{"alloc_in_new_tlab_objects", "count"}, {"alloc_in_new_tlab_bytes", "bytes"}}, [2]string{"space", "bytes"}, false},
	kindAllocOutsideTLAB: {"memory", [][2]string{{"alloc_outside_tlab_objects", "count"}, {"alloc_outside_tlab_bytes", "bytes"}}, [2]string{"space", "bytes"}, false},
	kindAllocSample:      {"memory", [][2]string{{"alloc_sample_objects", "count"}, {"alloc_sample_bytes", "bytes"}}, [2]string{"space", "bytes"}, false},
	kindLock:             {"mutex", [][2]string{{"contentions", "count"}, {"delay", "nanoseconds"}}, [2]string{"mutex", "count"}, false},
	kindPark:             {"block", [][2]string{{"contentions", "count"}, {"delay", "nanoseconds"}}, [2]string{"block", "count"}, false},
	kindLive:             {"memory", [][2]string{{"live", "count"}}, [2]string{"objects", "count"}, false},
	kindMalloc:           {"memory", [][2]string{{"malloc_objects", "count"}, {"malloc_bytes", "bytes"}}, [2]string{}, false},
}

// Per-sample labels that tie a sample to a span, as jfr-parser names them.
const (
	labelProfileID = "profile_id"
	labelSpanName  = "span_name"
	// labelEvent is the series label Pyroscope gives async-profiler's
	// sampling event (cpu, itimer, wall...).
	labelEvent = "jfr_event"
)

// sampleOnly are context label names kept on samples even when they are
// valid series label names: one value per span, trace or thread would make
// one series each. The ingest path keeps the same names per sample.
var sampleOnly = map[string]bool{
	"span_id": true, "trace_id": true, "span_name": true, "profile_id": true, "thread_name": true,
}

// correlation is what ties an event to a context and a span.
type correlation struct {
	contextID, spanID, spanName uint64
}

// ctxLabels is the labels of one context ID of the labels snapshot.
type ctxLabels struct {
	key    string        // series labels as a string, the builder key
	series labels.Labels // context labels that become series labels
	sample []labels.Label
}

type builderKey struct {
	kind   kind
	series string
}

type sampleKey struct {
	chunk int
	stack types.StackTraceRef
	corr  correlation
}

type locKey struct {
	fn   *gpprof.Function
	line uint32
}

// builder collects the samples of one profile: one kind, one label set.
type builder struct {
	kind    kind
	ctx     *ctxLabels
	prof    *gpprof.Profile
	funcs   map[string]*gpprof.Function
	locs    map[locKey]*gpprof.Location
	samples map[sampleKey]*gpprof.Sample
}

// frame is the name of a stack frame's method; ok is false when the
// recording lacks the method or its class, and the frame is left out, as
// jfr-parser leaves it out.
type frame struct {
	name string
	ok   bool
}

// converter turns the events of one recording into profiles.
type converter struct {
	p    *parser.Parser
	snap *labelsSnapshot
	// period is the nanoseconds one CPU or wall sample stands for.
	period int64
	// event is async-profiler's "event" setting (cpu, itimer, wall...),
	// empty in recordings of the JDK's own profiler.
	event string

	chunk          int
	header         parser.ChunkHeader
	ticksPerSecond uint64
	frames         map[types.MethodRef]frame // of the current chunk

	noContext *ctxLabels
	contexts  map[uint64]*ctxLabels
	builders  map[builderKey]*builder
	order     []*builder
}

func newConverter(rec []byte, snap *labelsSnapshot, period int64) *converter {
	return &converter{
		p: parser.NewParser(rec, parser.Options{
			// No chunk is larger than the recording: a header that says
			// otherwise is refused before anything is read past the end.
			ChunkSizeLimit: len(rec),
			// Merges the names of generated classes (lambdas, proxies)
			// that differ per JVM run, as Pyroscope does.
			SymbolProcessor: parser.ProcessSymbols,
		}),
		snap:      snap,
		period:    period,
		chunk:     -1,
		noContext: &ctxLabels{key: labels.Labels{}.String()},
		contexts:  map[uint64]*ctxLabels{},
		builders:  map[builderKey]*builder{},
	}
}

// run reads every event. The cases follow jfr-parser's own conversion, so
// that Hearth and Pyroscope make the same profiles of a recording.
func (c *converter) run() error {
	p := c.p
	for {
		typ, err := p.ParseEvent()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h := p.ChunkHeader(); c.chunk < 0 || h != c.header {
			// Constant pool IDs are per chunk.
			c.chunk++
			c.header = h
			c.ticksPerSecond = h.TicksPerSecond
			c.frames = map[types.MethodRef]frame{}
		}
		tm := &p.TypeMap
		switch typ {
		case tm.T_EXECUTION_SAMPLE:
			e := &p.ExecutionSample
			corr := correlation{e.ContextId, e.SpanId, e.SpanName}
			// A sleeping thread spends no CPU.
			if ts := p.GetThreadState(e.State); ts != nil && ts.Name != "STATE_SLEEPING" {
				c.add(kindCPU, corr, e.StackTrace, 1, 0)
			}
			// In async-profiler's wall mode, execution samples are wall
			// clock samples too.
			if c.event == "wall" {
				c.add(kindWall, corr, e.StackTrace, 1, 0)
			}
		case tm.T_WALL_CLOCK_SAMPLE:
			e := &p.WallClockSample
			corr := correlation{e.ContextId, e.SpanId, e.SpanName}
			n := int64(e.Samples)
			if ts := p.GetThreadState(e.State); ts != nil && ts.Name == "STATE_RUNNABLE" && c.event == "wall" {
				c.add(kindCPU, corr, e.StackTrace, n, 0)
			}
			c.add(kindWall, corr, e.StackTrace, n, 0)
		case tm.T_ALLOC_IN_NEW_TLAB:
			e := &p.ObjectAllocationInNewTLAB
			c.add(kindAllocInTLAB, correlation{e.ContextId, e.SpanId, e.SpanName}, e.StackTrace, 1, clampU(e.TlabSize))
		case tm.T_ALLOC_OUTSIDE_TLAB:
			e := &p.ObjectAllocationOutsideTLAB
			c.add(kindAllocOutsideTLAB, correlation{e.ContextId, e.SpanId, e.SpanName}, e.StackTrace, 1, clampU(e.AllocationSize))
		case tm.T_ALLOC_SAMPLE:
			e := &p.ObjectAllocationSample
			c.add(kindAllocSample, correlation{}, e.StackTrace, 1, clampU(e.Weight))
		case tm.T_MONITOR_ENTER:
			e := &p.JavaMonitorEnter
			c.add(kindLock, correlation{e.ContextId, e.SpanId, e.SpanName}, e.StackTrace, 1, c.nanos(e.Duration))
		case tm.T_THREAD_PARK:
			e := &p.ThreadPark
			c.add(kindPark, correlation{}, e.StackTrace, 1, c.nanos(e.Duration))
		case tm.T_LIVE_OBJECT:
			c.add(kindLive, correlation{}, p.LiveObject.StackTrace, 1, 0)
		case tm.T_MALLOC:
			e := &p.Malloc
			c.add(kindMalloc, correlation{}, e.StackTrace, 1, clampU(e.Size))
		case tm.T_ACTIVE_SETTING:
			if p.ActiveSetting.Name == "event" {
				c.event = p.ActiveSetting.Value
			}
		}
	}
}

// nanos converts a duration in ticks of the current chunk to nanoseconds.
// The JDK counts in nanoseconds; async-profiler may count in TSC ticks.
func (c *converter) nanos(ticks uint64) int64 {
	tps := c.ticksPerSecond
	if tps == 0 || tps == 1e9 {
		return clampU(ticks)
	}
	hi, lo := bits.Mul64(ticks, 1e9)
	if hi >= tps {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, tps)
	return clampU(q)
}

func clampU(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// addSat adds v to *dst, stopping at the largest int64 rather than
// wrapping to a negative value.
func addSat(dst *int64, v int64) {
	if *dst > math.MaxInt64-v {
		*dst = math.MaxInt64
		return
	}
	*dst += v
}

// add records one event of kind k on the given stack: count samples (or
// events) and, for the kinds with a second sample type, value.
func (c *converter) add(k kind, corr correlation, ref types.StackTraceRef, count, value int64) {
	st := c.p.GetStacktrace(ref)
	if st == nil {
		return // the recording lacks the stack: nothing to attribute to
	}
	spec := &kindSpecs[k]
	vals := [2]int64{count, value}
	if spec.timed {
		vals[0] = count * c.period
		if count != 0 && vals[0]/count != c.period {
			vals[0] = math.MaxInt64
		}
	}
	ctx := c.context(corr.contextID)
	b := c.builder(k, ctx)
	key := sampleKey{c.chunk, ref, corr}
	if s := b.samples[key]; s != nil {
		for i := range s.Value {
			addSat(&s.Value[i], vals[i])
		}
		return
	}
	locs := make([]*gpprof.Location, 0, len(st.Frames))
	for _, f := range st.Frames {
		fr := c.frame(f.Method)
		if !fr.ok {
			continue
		}
		locs = append(locs, b.location(fr.name, f.LineNumber))
	}
	s := &gpprof.Sample{Location: locs, Value: append([]int64(nil), vals[:len(spec.sampleTypes)]...)}
	for _, l := range ctx.sample {
		setLabel(s, l.Name, l.Value)
	}
	if corr.spanID != 0 {
		setLabel(s, labelProfileID, fmt.Sprintf("%016x", corr.spanID))
	}
	if corr.spanName != 0 && c.snap != nil {
		if name := c.snap.strings[int64(corr.spanName)]; name != "" {
			setLabel(s, labelSpanName, name)
		}
	}
	b.samples[key] = s
	b.prof.Sample = append(b.prof.Sample, s)
}

func setLabel(s *gpprof.Sample, k, v string) {
	if s.Label == nil {
		s.Label = map[string][]string{}
	}
	s.Label[k] = []string{v}
}

// frame names the method of a stack frame "class.method", as Pyroscope
// does; class names keep the JVM's slashes (java/lang/Thread.run).
func (c *converter) frame(ref types.MethodRef) frame {
	if f, ok := c.frames[ref]; ok {
		return f
	}
	var f frame
	if m := c.p.GetMethod(ref); m != nil {
		if cls := c.p.GetClass(m.Type); cls != nil {
			f = frame{c.p.GetSymbolString(cls.Name) + "." + c.p.GetSymbolString(m.Name), true}
		}
	}
	c.frames[ref] = f
	return f
}

// context returns the labels of a context ID of the snapshot.
func (c *converter) context(id uint64) *ctxLabels {
	if c.snap == nil || id == 0 {
		return c.noContext
	}
	if ctx, ok := c.contexts[id]; ok {
		return ctx
	}
	ctx := c.noContext
	if pairs, ok := c.snap.contexts[int64(id)]; ok && len(pairs) > 0 {
		var series, sample []labels.Label
		for k, v := range pairs {
			name, value := c.snap.strings[k], c.snap.strings[v]
			if name == "" || value == "" {
				continue
			}
			// A name that cannot name a series (a dot, a dash, a reserved
			// __ prefix) still labels the samples.
			if labels.ValidName(name) && !strings.HasPrefix(name, "__") && !sampleOnly[name] {
				series = append(series, labels.Label{Name: name, Value: value})
			} else {
				sample = append(sample, labels.Label{Name: name, Value: value})
			}
		}
		ls := labels.New(series...)
		ctx = &ctxLabels{key: ls.String(), series: ls, sample: sample}
	}
	c.contexts[id] = ctx
	return ctx
}

func (c *converter) builder(k kind, ctx *ctxLabels) *builder {
	key := builderKey{k, ctx.key}
	if b, ok := c.builders[key]; ok {
		return b
	}
	spec := &kindSpecs[k]
	p := &gpprof.Profile{}
	for _, st := range spec.sampleTypes {
		p.SampleType = append(p.SampleType, &gpprof.ValueType{Type: st[0], Unit: st[1]})
	}
	if spec.periodType[0] != "" {
		p.PeriodType = &gpprof.ValueType{Type: spec.periodType[0], Unit: spec.periodType[1]}
	}
	if spec.timed {
		p.Period = c.period
	}
	b := &builder{
		kind: k, ctx: ctx, prof: p,
		funcs:   map[string]*gpprof.Function{},
		locs:    map[locKey]*gpprof.Location{},
		samples: map[sampleKey]*gpprof.Sample{},
	}
	c.builders[key] = b
	c.order = append(c.order, b)
	return b
}

// location returns the location of a function and line, adding it to the
// profile when new.
func (b *builder) location(name string, line uint32) *gpprof.Location {
	fn := b.funcs[name]
	if fn == nil {
		fn = &gpprof.Function{ID: uint64(len(b.prof.Function) + 1), Name: name}
		b.funcs[name] = fn
		b.prof.Function = append(b.prof.Function, fn)
	}
	key := locKey{fn, line}
	loc := b.locs[key]
	if loc == nil {
		loc = &gpprof.Location{
			ID:   uint64(len(b.prof.Location) + 1),
			Line: []gpprof.Line{{Function: fn, Line: lineNumber(line)}},
		}
		b.locs[key] = loc
		b.prof.Location = append(b.prof.Location, loc)
	}
	return loc
}

// lineNumber reads JFR's line number, a Java int that the parser hands over
// as unsigned: -1 (2^32-1 here) marks a frame without one, which pprof
// writes as 0.
func lineNumber(line uint32) int64 {
	if int32(line) < 0 {
		return 0
	}
	return int64(line)
}
