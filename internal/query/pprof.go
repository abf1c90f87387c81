package query

import (
	"context"
	"encoding/binary"
	"slices"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// Pprof merges the selection into one pprof profile. A selector without a
// profile type returns every type the selected series hold, as sample types
// of the one profile, so that what was pushed comes back whole. The result
// may have no samples.
func (e *Engine) Pprof(ctx context.Context, r Request) (*gpprof.Profile, error) {
	p, _, err := r.params()
	if err != nil {
		return nil, err
	}
	// A pprof answer keeps every sample's labels and request.
	p.Apart = storage.ApartSets | storage.ApartSpans
	svs, err := e.st.SelectStacks(ctx, r.Tenant, p)
	if err != nil {
		return nil, err
	}
	var types []string
	for _, sv := range svs {
		if !slices.Contains(types, sv.Type) {
			types = append(types, sv.Type)
		}
	}
	slices.Sort(types)
	w := newPprofWriter(len(types))
	out := w.p
	out.TimeNanos = r.Start.UnixNano()
	out.DurationNanos = r.End.Sub(r.Start).Nanoseconds()
	for _, ts := range types {
		t, _ := profile.ParseType(ts)
		out.SampleType = append(out.SampleType, &gpprof.ValueType{Type: t.SampleType, Unit: t.SampleUnit})
		if out.PeriodType == nil && t.PeriodType != "" {
			out.PeriodType = &gpprof.ValueType{Type: t.PeriodType, Unit: t.PeriodUnit}
		}
	}
	if len(types) > 0 {
		out.DefaultSampleType = out.SampleType[0].Type
	}
	var hide *regexpMatcher
	if r.Filter.Hide != nil {
		hide = &regexpMatcher{r.Filter.Hide}
	}
	for _, sv := range svs {
		w.add(slices.Index(types, sv.Type), sv, hide)
	}
	return out, nil
}

type pprofWriter struct {
	p       *gpprof.Profile
	ntypes  int
	funcs   map[gpprof.Function]*gpprof.Function
	maps    map[gpprof.Mapping]*gpprof.Mapping
	locs    map[string]*gpprof.Location
	samples map[string]*gpprof.Sample
	key     []byte
}

func newPprofWriter(ntypes int) *pprofWriter {
	return &pprofWriter{
		p: &gpprof.Profile{}, ntypes: ntypes,
		funcs: map[gpprof.Function]*gpprof.Function{}, maps: map[gpprof.Mapping]*gpprof.Mapping{},
		locs: map[string]*gpprof.Location{}, samples: map[string]*gpprof.Sample{},
	}
}

// add writes one symbol table's values into sample value column col.
func (w *pprofWriter) add(col int, sv *storage.StackValues, hide *regexpMatcher) {
	s := sv.Syms
	locOut := make([]*gpprof.Location, len(s.Locations))
	hidden := make([]bool, len(s.Locations))
	seen := make([]bool, len(s.Locations))
	var stack []*gpprof.Location
	emit := func(node, set, span uint32, v int64) {
		stack = stack[:0]
		for n := node; n != 0; n = s.StackParent[n] {
			loc := s.StackLoc[n]
			if !seen[loc] {
				seen[loc] = true
				locOut[loc], hidden[loc] = w.location(s, loc, hide)
			}
			if !hidden[loc] {
				stack = append(stack, locOut[loc])
			}
		}
		var ls labels.Labels
		if set != 0 {
			ls = sv.Sets[set]
		}
		if span != 0 {
			ls = sv.Spans[span].AddTo(ls)
		}
		w.sample(stack, ls, col, v)
	}
	for node, v := range sv.Values {
		if v != 0 {
			emit(uint32(node), 0, 0, v)
		}
	}
	keys := make([]storage.LabeledStack, 0, len(sv.Labeled))
	for k := range sv.Labeled {
		keys = append(keys, k)
	}
	// Map order is random; sort so that the output is deterministic.
	slices.SortFunc(keys, func(a, b storage.LabeledStack) int {
		if a.Stack != b.Stack {
			return int(a.Stack) - int(b.Stack)
		}
		if a.Set != b.Set {
			return int(a.Set) - int(b.Set)
		}
		return int(a.Span) - int(b.Span)
	})
	for _, k := range keys {
		emit(k.Stack, k.Set, k.Span, sv.Labeled[k])
	}
}

func (w *pprofWriter) sample(stack []*gpprof.Location, ls labels.Labels, col int, v int64) {
	k := w.key[:0]
	for _, l := range stack {
		k = binary.AppendUvarint(k, l.ID)
	}
	if ls.Len() > 0 {
		k = append(k, 0xff)
		ls.Range(func(l labels.Label) {
			k = append(k, l.Name...)
			k = append(k, 0)
			k = append(k, l.Value...)
			k = append(k, 0)
		})
	}
	w.key = k
	smp := w.samples[string(k)]
	if smp == nil {
		smp = &gpprof.Sample{Location: slices.Clone(stack), Value: make([]int64, w.ntypes)}
		if ls.Len() > 0 {
			smp.Label = map[string][]string{}
			ls.Range(func(l labels.Label) { smp.Label[l.Name] = []string{l.Value} })
		}
		w.samples[string(k)] = smp
		w.p.Sample = append(w.p.Sample, smp)
	}
	smp.Value[col] += v
}

// location returns the output location for loc, and whether the hide
// filter removes it (every line of it hidden).
func (w *pprofWriter) location(s *storage.Symbols, loc uint32, hide *regexpMatcher) (*gpprof.Location, bool) {
	l := s.Locations[loc]
	out := &gpprof.Location{Address: l.Address, IsFolded: l.IsFolded}
	if l.Mapping != 0 {
		m := s.Mappings[l.Mapping]
		gm := gpprof.Mapping{
			Start: m.Start, Limit: m.Limit, Offset: m.Offset,
			File: s.Strings[m.File], BuildID: s.Strings[m.BuildID],
			HasFunctions: m.HasFunctions, HasFilenames: m.HasFilenames,
			HasLineNumbers: m.HasLineNumbers, HasInlineFrames: m.HasInlineFrames,
		}
		om := w.maps[gm]
		if om == nil {
			// The key is taken before the ID is set: lookups are by
			// content, with no ID.
			key := gm
			om = &gm
			om.ID = uint64(len(w.p.Mapping) + 1)
			w.maps[key] = om
			w.p.Mapping = append(w.p.Mapping, om)
		}
		out.Mapping = om
	}
	lines := s.LocationLines(loc)
	allHidden := hide != nil && len(lines) > 0
	if hide != nil && len(lines) == 0 {
		allHidden = hide.match(frameName(s, loc, storage.Line{}))
	}
	for _, ln := range lines {
		var of *gpprof.Function
		if ln.Function != 0 {
			f := s.Functions[ln.Function]
			gf := gpprof.Function{Name: s.Strings[f.Name], SystemName: s.Strings[f.SystemName], Filename: s.Strings[f.Filename], StartLine: f.StartLine}
			of = w.funcs[gf]
			if of == nil {
				key := gf
				of = &gf
				of.ID = uint64(len(w.p.Function) + 1)
				w.funcs[key] = of
				w.p.Function = append(w.p.Function, of)
			}
		}
		if allHidden && !hide.match(frameName(s, loc, ln)) {
			allHidden = false
		}
		out.Line = append(out.Line, gpprof.Line{Function: of, Line: ln.Line})
	}
	k := w.key[:0]
	if out.Mapping != nil {
		k = binary.AppendUvarint(k, out.Mapping.ID)
	} else {
		k = append(k, 0)
	}
	k = binary.AppendUvarint(k, out.Address)
	for _, ln := range out.Line {
		if ln.Function != nil {
			k = binary.AppendUvarint(k, ln.Function.ID)
		} else {
			k = append(k, 0)
		}
		k = binary.AppendVarint(k, ln.Line)
	}
	w.key = k
	if ol := w.locs[string(k)]; ol != nil {
		return ol, allHidden
	}
	out.ID = uint64(len(w.p.Location) + 1)
	w.locs[string(k)] = out
	w.p.Location = append(w.p.Location, out)
	return out, allHidden
}
