package storage

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/priority"
)

// SelectParams say which samples a query reads.
type SelectParams struct {
	// Start and End bound profile timestamps in unix nanoseconds:
	// Start <= t < End.
	Start, End int64
	// Matchers apply to series labels (__profile_type__ included) and to
	// per-sample labels: a matcher whose name is a per-sample label in the
	// data selects samples, any other selects series.
	Matchers []*labels.Matcher
	// Keep, when set, is called once per symbol table and says per stack
	// node whether samples on that stack count. Stack filters use it.
	Keep func(*Symbols) []bool
	// Spans, when set, says per request whether its samples count,
	// besides the matchers; samples taken outside any request have the
	// zero SpanRef. A span filter uses it. It is called once per request
	// that a source holds, and must be safe for concurrent use: sources
	// are read at once.
	Spans func(SpanRef) bool
	// Apart says which samples StackValues keeps apart, in Labeled, rather
	// than summed per stack in Values: a flame graph needs neither, and
	// reads neither column when no filter needs it either.
	Apart Apart
	// Scan, when set, is told of each selected series before a source
	// reads it: its labels and the rows it is about to read (sample rows;
	// one per profile for SelectSeries without stack or sample filters,
	// which reads the profiles' totals). An error from it stops the
	// select, which returns it as is: a query's limits stop it before it
	// reads past them.
	Scan func(lbls labels.Labels, rows int64) error
	// Profiles, when set, limits the select to these profiles.
	Profiles *ProfileSet

	// sampleNames are the per-sample label names of all the tenant's
	// data, set by the DB before it fans out: whether a matcher selects
	// samples must not depend on how the data is split between heads and
	// blocks.
	sampleNames map[string]struct{}
}

// Apart is what SelectStacks keeps samples apart by.
type Apart uint8

const (
	// ApartSets keeps samples of different per-sample label sets apart.
	ApartSets Apart = 1 << iota
	// ApartSpans keeps samples of different requests apart; for
	// SelectSeries, it gives each profile's total per request as well
	// (SeriesPoints.Spans).
	ApartSpans
)

// StackValues are the merged values of one profile type per stack of one
// symbol table.
type StackValues struct {
	Type string // full profile type name
	Syms *Symbols
	// Values is indexed by stack node and holds samples that carry no
	// per-sample labels or request, or that the select did not keep
	// apart.
	Values []int64
	// Labeled holds samples with per-sample labels or a request, by
	// stack, set and span, as far as SelectParams.Apart asks.
	Labeled map[LabeledStack]int64
	// Sets are the per-sample label sets that LabeledStack.Set indexes.
	Sets []labels.Labels
	// Spans are the requests that LabeledStack.Span indexes; entry 0 is
	// none.
	Spans []SpanRef
}

// LabeledStack is a stack node with a per-sample label set and the
// request it was taken in.
type LabeledStack struct{ Stack, Set, Span uint32 }

// Point is one profile's total at time T (unix nanoseconds).
type Point struct {
	T int64
	V int64
}

// SpanPoint is what one request took of one profile at time T.
type SpanPoint struct {
	T    int64
	Span SpanRef
	V    int64
}

// compareSpanPoints orders by time, then request: the order of
// SeriesPoints.Spans, which must not depend on where a request was
// interned.
func compareSpanPoints(a, b SpanPoint) int {
	if c := cmp.Compare(a.T, b.T); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Span.Span, b.Span.Span); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Span.Root, b.Span.Root); c != 0 {
		return c
	}
	return bytes.Compare(a.Span.Trace[:], b.Span.Trace[:])
}

// SeriesPoints are the totals of one series' profiles in time order.
type SeriesPoints struct {
	Labels labels.Labels
	Points []Point
	// Spans, when the select keeps requests apart, are the profiles'
	// samples summed per request, by time and then request; samples taken
	// outside any request are not in them.
	Spans []SpanPoint
}

// source is one part of a tenant's data that queries fan out to: the
// head, a frozen head waiting for its block, or a block. Each answers with
// its own symbol table; the DB merges what must be merged (series by
// labels, names and values as sets) and the query engine merges stacks.
type source interface {
	overlaps(start, end int64) bool
	selectStacks(ctx context.Context, p SelectParams) ([]*StackValues, error)
	selectSeries(ctx context.Context, p SelectParams) ([]SeriesPoints, error)
	matchSeries(p SelectParams, out map[uint64][]labels.Labels)
	labelNames(p SelectParams, out map[string]struct{})
	labelValues(name string, p SelectParams, out map[string]struct{})
}

// snapshot returns a view of the tables as they are now, without the
// indexes. Appends never change existing entries, so the view stays valid
// after the lock is released.
func (s *Symbols) snapshot() *Symbols {
	return &Symbols{
		Strings: s.Strings, Mappings: s.Mappings, Functions: s.Functions,
		Locations: s.Locations, Lines: s.Lines,
		StackParent: s.StackParent, StackLoc: s.StackLoc,
		stackHash: s.stackHash, locHash: s.locHash,
	}
}

// plan is a query's matchers split for one source.
type plan struct {
	series, sample, span []*labels.Matcher
	setOK                []bool // per sample set: passes the sample matchers
	// spanOK is per span whether it passes the span matchers and
	// SelectParams.Spans (spanYes, spanNo), found on the first sample
	// that asks: a query reads the requests of the series it selects,
	// often few of a source's.
	spanOK   []uint8
	spans    []SpanRef
	spanPass func(SpanRef) bool
	// noSpanOK is per sample set whether samples without a request pass
	// them: a span label that names no ID (span_id="checkout") stays in
	// the set, where span matchers look for it. It is nil without span
	// matchers: then noSpan says for every set.
	noSpanOK []bool
	noSpan   bool
	// apartSets and apartSpans are SelectParams.Apart.
	apartSets, apartSpans bool
}

// needSets and needSpans say whether a select reads the sample set and
// span of each sample.
func (pl *plan) needSets() bool  { return pl.apartSets || pl.setOK != nil || pl.noSpanOK != nil }
func (pl *plan) needSpans() bool { return pl.apartSpans || pl.spanOK != nil }

// passes says whether a sample of a set and a span passes pl.
func (pl *plan) passes(set, span uint32) bool {
	if pl.setOK != nil && !pl.setOK[set] {
		return false
	}
	if pl.spanOK == nil {
		return true
	}
	if span == 0 {
		if pl.noSpanOK == nil {
			return pl.noSpan
		}
		return pl.noSpanOK[set]
	}
	switch pl.spanOK[span] {
	case spanYes:
		return true
	case spanNo:
		return false
	}
	ok := pl.spanPass(pl.spans[span])
	pl.spanOK[span] = spanNo
	if ok {
		pl.spanOK[span] = spanYes
	}
	return ok
}

const (
	spanYes = 1 + iota
	spanNo
)

// filters says whether pl looks at samples' sets or spans.
func (pl *plan) filters() bool { return pl.setOK != nil || pl.spanOK != nil }

// makePlan splits p's matchers into series, per-sample and span matchers:
// a name that is a per-sample label in the tenant's data (p.sampleNames)
// and no series label in the source selects samples, by their label set or
// (span_id, local_root_span_id, trace_id) by their request. A source
// without that per-sample label then matches its samples as if the label
// were empty, as a source that has it does for its samples without it.
func makePlan(p SelectParams, seriesNames map[string]struct{}, sets []labels.Labels, spans []SpanRef) plan {
	pl := plan{apartSets: p.Apart&ApartSets != 0, apartSpans: p.Apart&ApartSpans != 0}
	for _, m := range p.Matchers {
		switch {
		case !isSampleLabel(m.Name, p.sampleNames, seriesNames):
			pl.series = append(pl.series, m)
		case IsSpanLabel(m.Name):
			pl.span = append(pl.span, m)
		default:
			pl.sample = append(pl.sample, m)
		}
	}
	if len(pl.sample) > 0 {
		pl.setOK = make([]bool, max(len(sets), 1)) // a source without sets has the empty one
		for i := range pl.setOK {
			var set labels.Labels
			if i < len(sets) {
				set = sets[i]
			}
			pl.setOK[i] = labels.MatchLabels(set, pl.sample...)
		}
	}
	if len(pl.span) > 0 || p.Spans != nil {
		pl.spanOK = make([]uint8, max(len(spans), 1)) // a source without spans has the zero one
		pl.spans = spans
		ms, pred := pl.span, p.Spans
		pl.spanPass = func(r SpanRef) bool { return matchSpan(r, ms) && (pred == nil || pred(r)) }
		pl.noSpan = p.Spans == nil || p.Spans(SpanRef{})
		if len(pl.span) > 0 && pl.noSpan {
			pl.noSpanOK = make([]bool, max(len(sets), 1))
			for i := range pl.noSpanOK {
				var set labels.Labels
				if i < len(sets) {
					set = sets[i]
				}
				pl.noSpanOK[i] = labels.MatchLabels(set, pl.span...)
			}
		}
	}
	return pl
}

// matchSpan applies span matchers to a request's IDs, as hex strings.
func matchSpan(r SpanRef, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(r.Get(m.Name)) {
			return false
		}
	}
	return true
}

func isSampleLabel(name string, sampleNames, seriesNames map[string]struct{}) bool {
	_, sample := sampleNames[name]
	_, series := seriesNames[name]
	return sample && !series
}

// sampleValues collects labels' values over per-sample label sets, or over
// requests for a span label.
func sampleValues(name string, sets []labels.Labels, spans []SpanRef, pl plan, out map[string]struct{}) {
	if IsSpanLabel(name) {
		for _, r := range spans {
			if v := r.Get(name); v != "" && matchSpan(r, pl.span) {
				out[v] = struct{}{}
			}
		}
	}
	for _, set := range sets {
		if v := set.Get(name); v != "" && labels.MatchLabels(set, pl.sample...) {
			out[v] = struct{}{}
		}
	}
}

// sources returns what of the tenant overlaps [p.Start, p.End): a view of
// the live head, frozen heads and blocks. It sets p.sampleNames from every
// head and block. The tenant's lock is held only to take the view: the
// query then reads without it, so that writes do not wait for queries.
// The caller holds t.blocksMu.RLock, which keeps frozen heads and blocks
// from being closed. rv adds what the ingesters hold (readTenant).
func (t *tenant) sources(p *SelectParams, rv *remoteView) []source {
	blocks := rv.blocks(t.blocks)
	start, end := p.Start, p.End
	var out []source
	t.mu.RLock()
	h := t.head
	frozen := slices.Clone(t.frozen)
	p.sampleNames = maps.Clone(h.sampleNames)
	for _, fh := range frozen {
		maps.Copy(p.sampleNames, fh.head.sampleNames)
	}
	for _, b := range blocks {
		maps.Copy(p.sampleNames, b.sampleNames)
	}
	if h.overlaps(start, end) {
		out = append(out, h.view())
	}
	t.mu.RUnlock()
	for _, fh := range frozen {
		if fh.head.overlaps(start, end) {
			out = append(out, fh.head)
		}
	}
	for _, b := range blocks {
		if b.overlaps(start, end) {
			out = append(out, b)
		}
	}
	return out
}

// SelectStacks merges the selected samples per profile type and source:
// the answer holds one StackValues per type and symbol table (the head,
// frozen heads, and each block), which the caller merges by stack content.
func (db *DB) SelectStacks(ctx context.Context, tenantID string, p SelectParams) ([]*StackValues, error) {
	t, rv, err := db.readTenant(ctx, tenantID, p.Start, p.End)
	if t == nil || err != nil {
		return nil, err
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	var out []*StackValues
	for _, s := range t.sources(&p, rv) {
		svs, err := s.selectStacks(ctx, p)
		if err != nil {
			if db.skip(ctx, tenantID, err) {
				continue
			}
			return nil, err
		}
		out = append(out, svs...)
	}
	slices.SortStableFunc(out, func(a, b *StackValues) int { return cmp.Compare(a.Type, b.Type) })
	return out, nil
}

// SelectSeries returns the total of each selected profile, per series.
// A series stored in several sources comes back once, its points merged
// in time order.
func (db *DB) SelectSeries(ctx context.Context, tenantID string, p SelectParams) ([]SeriesPoints, error) {
	t, rv, err := db.readTenant(ctx, tenantID, p.Start, p.End)
	if t == nil || err != nil {
		return nil, err
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	var all []SeriesPoints
	for _, s := range t.sources(&p, rv) {
		sps, err := s.selectSeries(ctx, p)
		if err != nil {
			if db.skip(ctx, tenantID, err) {
				continue
			}
			return nil, err
		}
		all = append(all, sps...)
	}
	return mergeSeriesPoints(all), nil
}

// mergeSeriesPoints joins the points of equal label sets.
func mergeSeriesPoints(all []SeriesPoints) []SeriesPoints {
	if len(all) == 0 {
		return nil
	}
	slices.SortStableFunc(all, func(a, b SeriesPoints) int { return labels.Compare(a.Labels, b.Labels) })
	out := all[:1]
	for _, sp := range all[1:] {
		last := &out[len(out)-1]
		if last.Labels.Equal(sp.Labels) {
			last.Points = append(last.Points, sp.Points...)
			last.Spans = append(last.Spans, sp.Spans...)
			continue
		}
		out = append(out, sp)
	}
	for i := range out {
		slices.SortStableFunc(out[i].Points, func(a, b Point) int { return cmp.Compare(a.T, b.T) })
		slices.SortFunc(out[i].Spans, compareSpanPoints)
	}
	return out
}

// Series returns the label sets of the selected series.
func (db *DB) Series(ctx context.Context, tenantID string, start, end int64, ms []*labels.Matcher) ([]labels.Labels, error) {
	t, rv, err := db.readTenant(ctx, tenantID, start, end)
	if t == nil || err != nil {
		return nil, err
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	set := map[uint64][]labels.Labels{}
	p := SelectParams{Start: start, End: end, Matchers: ms}
	for _, s := range t.sources(&p, rv) {
		s.matchSeries(p, set)
	}
	var out []labels.Labels
	for _, ls := range set {
		out = append(out, ls...)
	}
	slices.SortFunc(out, labels.Compare)
	return out, nil
}

// addSeries adds ls to a set of label sets keyed by hash.
func addSeries(set map[uint64][]labels.Labels, ls labels.Labels) {
	h := ls.Hash()
	for _, x := range set[h] {
		if x.Equal(ls) {
			return
		}
	}
	set[h] = append(set[h], ls)
}

// LabelNames returns the names of series labels, and of per-sample labels,
// of the selected series.
func (db *DB) LabelNames(ctx context.Context, tenantID string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	t, rv, err := db.readTenant(ctx, tenantID, start, end)
	if t == nil || err != nil {
		return nil, err
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	names := map[string]struct{}{}
	p := SelectParams{Start: start, End: end, Matchers: ms}
	for _, s := range t.sources(&p, rv) {
		s.labelNames(p, names)
	}
	return slices.Sorted(maps.Keys(names)), nil
}

// LabelValues returns the values of one label over the selected series,
// or over the per-sample label sets when name is a per-sample label.
func (db *DB) LabelValues(ctx context.Context, tenantID, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	t, rv, err := db.readTenant(ctx, tenantID, start, end)
	if t == nil || err != nil {
		return nil, err
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	vals := map[string]struct{}{}
	p := SelectParams{Start: start, End: end, Matchers: ms}
	for _, s := range t.sources(&p, rv) {
		s.labelValues(name, p, vals)
	}
	return slices.Sorted(maps.Keys(vals)), nil
}

// The head as a source. The live head is read under its tenant's read
// lock; a frozen head is immutable.

func (h *head) plan(p SelectParams) plan {
	return makePlan(p, h.seriesNames, h.sampleSets, h.spans.refs)
}

func (h *head) overlaps(start, end int64) bool {
	return len(h.all) > 0 && h.minT < end && h.maxT >= start
}

func (s *memSeries) overlaps(start, end int64) bool {
	return len(s.profiles) > 0 && s.minT < end && s.maxT >= start
}

// stepSamples is how many samples a query merges between two accounts of
// its work to the priority governor: about 10-50 µs of work.
const stepSamples = 8192

// rows counts what a select reads of s's profiles in [start, end): their
// sample rows, or with samples false their totals, one per profile.
func (s *memSeries) rows(start, end int64, samples bool) int64 {
	var n int64
	for i := range s.profiles {
		mp := &s.profiles[i]
		if mp.ts < start || mp.ts >= end {
			continue
		}
		if samples {
			n += int64(len(mp.stacks))
		} else {
			n++
		}
	}
	return n
}

func (h *head) selectStacks(ctx context.Context, p SelectParams) ([]*StackValues, error) {
	if !h.overlaps(p.Start, p.End) {
		return nil, nil
	}
	pl := h.plan(p)
	syms := h.syms.snapshot()
	var keep []bool
	if p.Keep != nil {
		keep = p.Keep(syms)
	}
	byType := map[string]*StackValues{}
	meter := priority.NewMeter(ctx, stepSamples)
	for i, s := range h.all {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if !s.overlaps(p.Start, p.End) || !labels.MatchLabels(s.lbls, pl.series...) {
			continue
		}
		sid, ok := p.seriesOK(s.lbls)
		if !ok {
			continue
		}
		if p.Scan != nil {
			if err := p.Scan(s.lbls, s.rows(p.Start, p.End, true)); err != nil {
				return nil, err
			}
		}
		typ := s.lbls.Get(labels.ProfileType)
		sv := byType[typ]
		if sv == nil {
			sv = &StackValues{Type: typ, Syms: syms, Values: make([]int64, len(syms.StackParent)), Sets: h.sampleSets, Spans: h.spans.refs}
			byType[typ] = sv
		}
		for _, mp := range s.profiles {
			if mp.ts < p.Start || mp.ts >= p.End || !p.wantProfile(sid, mp.ts) {
				continue
			}
			mergeProfile(sv, &mp, keep, pl)
			if err := meter.Add(len(mp.stacks)); err != nil {
				return nil, err
			}
		}
	}
	return sortedByType(byType), nil
}

func sortedByType(byType map[string]*StackValues) []*StackValues {
	out := make([]*StackValues, 0, len(byType))
	for _, sv := range byType {
		out = append(out, sv)
	}
	slices.SortFunc(out, func(a, b *StackValues) int { return cmp.Compare(a.Type, b.Type) })
	return out
}

func mergeProfile(sv *StackValues, mp *memProfile, keep []bool, pl plan) {
	sets, spans := mp.sets, mp.spans
	if !pl.needSets() {
		sets = nil
	}
	if !pl.needSpans() {
		spans = nil
	}
	if sets == nil && spans == nil && keep == nil && !pl.filters() {
		vals := sv.Values
		for i, st := range mp.stacks {
			vals[st] += mp.values[i]
		}
		return
	}
	for i, st := range mp.stacks {
		var set, span uint32
		if sets != nil {
			set = sets[i]
		}
		if spans != nil {
			span = spans[i]
		}
		addSample(sv, st, set, span, mp.values[i], keep, pl)
	}
}

// addSample adds one sample to sv under the query's filters.
func addSample(sv *StackValues, st, set, span uint32, v int64, keep []bool, pl plan) {
	if keep != nil && !keep[st] || !pl.passes(set, span) {
		return
	}
	if !pl.apartSets {
		set = 0
	}
	if !pl.apartSpans {
		span = 0
	}
	if set == 0 && span == 0 {
		sv.Values[st] += v
		return
	}
	if sv.Labeled == nil {
		sv.Labeled = make(map[LabeledStack]int64)
	}
	sv.Labeled[LabeledStack{st, set, span}] += v
}

// profileTotal is a profile's total under the query's stack and sample
// filters.
func profileTotal(mp *memProfile, keep []bool, pl plan) int64 {
	if keep == nil && !pl.filters() {
		return mp.total
	}
	var sum int64
	for i, st := range mp.stacks {
		if keep != nil && !keep[st] {
			continue
		}
		var set, span uint32
		if mp.sets != nil {
			set = mp.sets[i]
		}
		if mp.spans != nil {
			span = mp.spans[i]
		}
		if !pl.passes(set, span) {
			continue
		}
		sum += mp.values[i]
	}
	return sum
}

// profileSpans appends what each request took of a head profile, under
// the query's filters, in request order.
func profileSpans(out []SpanPoint, mp *memProfile, keep []bool, pl plan, refs []SpanRef) []SpanPoint {
	sums := map[uint32]int64{}
	for i, st := range mp.stacks {
		span := mp.spans[i]
		if span == 0 || keep != nil && !keep[st] {
			continue
		}
		var set uint32
		if mp.sets != nil {
			set = mp.sets[i]
		}
		if !pl.passes(set, span) {
			continue
		}
		sums[span] += mp.values[i]
	}
	return appendSpanSums(out, mp.ts, sums, refs)
}

// appendSpanSums appends one profile's sums per request, in request order.
func appendSpanSums(out []SpanPoint, t int64, sums map[uint32]int64, refs []SpanRef) []SpanPoint {
	for _, span := range slices.Sorted(maps.Keys(sums)) {
		out = append(out, SpanPoint{T: t, Span: refs[span], V: sums[span]})
	}
	return out
}

func (h *head) selectSeries(ctx context.Context, p SelectParams) ([]SeriesPoints, error) {
	if !h.overlaps(p.Start, p.End) {
		return nil, nil
	}
	pl := h.plan(p)
	var keep []bool
	if p.Keep != nil {
		keep = p.Keep(h.syms.snapshot())
	}
	var out []SeriesPoints
	for _, s := range h.all {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !s.overlaps(p.Start, p.End) || !labels.MatchLabels(s.lbls, pl.series...) {
			continue
		}
		sid, ok := p.seriesOK(s.lbls)
		if !ok {
			continue
		}
		if p.Scan != nil {
			if err := p.Scan(s.lbls, s.rows(p.Start, p.End, keep != nil || pl.filters() || pl.apartSpans)); err != nil {
				return nil, err
			}
		}
		sp := SeriesPoints{Labels: s.lbls}
		for _, mp := range s.profiles {
			if mp.ts < p.Start || mp.ts >= p.End || !p.wantProfile(sid, mp.ts) {
				continue
			}
			sp.Points = append(sp.Points, Point{mp.ts, profileTotal(&mp, keep, pl)})
			if pl.apartSpans && mp.spans != nil {
				sp.Spans = profileSpans(sp.Spans, &mp, keep, pl, h.spans.refs)
			}
		}
		slices.SortFunc(sp.Points, func(a, b Point) int { return cmp.Compare(a.T, b.T) })

		out = append(out, sp)
	}
	return out, nil
}

func (h *head) matchSeries(p SelectParams, out map[uint64][]labels.Labels) {
	start, end, pl := p.Start, p.End, h.plan(p)
	for _, s := range h.all {
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			addSeries(out, s.lbls)
		}
	}
}

func (h *head) labelNames(p SelectParams, names map[string]struct{}) {
	start, end, pl := p.Start, p.End, h.plan(p)
	found := false
	for _, s := range h.all {
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			s.lbls.Range(func(l labels.Label) { names[l.Name] = struct{}{} })
			found = true
		}
	}
	if found {
		// The tenant's per-sample names, as matchers see them.
		maps.Copy(names, p.sampleNames)
	}
}

func (h *head) labelValues(name string, p SelectParams, vals map[string]struct{}) {
	start, end, pl := p.Start, p.End, h.plan(p)
	if isSampleLabel(name, p.sampleNames, h.seriesNames) {
		sampleValues(name, h.sampleSets, h.spans.refs, pl, vals)
		return
	}
	for _, s := range h.all {
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			if v := s.lbls.Get(name); v != "" {
				vals[v] = struct{}{}
			}
		}
	}
}

// ProfileBounds returns the time of the oldest and the newest profile of
// a tenant, unix nanoseconds; ok is false when it has none. Under
// WithIngesters, it asks the ingesters for all of their heads.
func (db *DB) ProfileBounds(ctx context.Context, tenantID string) (minT, maxT int64, ok bool, err error) {
	t, rv, err := db.readTenant(ctx, tenantID, -1<<63, 1<<63-1)
	if t == nil || err != nil {
		return 0, 0, false, err
	}
	minT, maxT = 1<<63-1, -1<<63
	add := func(lo, hi int64) {
		minT, maxT, ok = min(minT, lo), max(maxT, hi), true
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	t.mu.RLock()
	if len(t.head.all) > 0 && t.head.minT <= t.head.maxT {
		add(t.head.minT, t.head.maxT)
	}
	for _, fh := range t.frozen {
		if len(fh.head.all) > 0 && fh.head.minT <= fh.head.maxT {
			add(fh.head.minT, fh.head.maxT)
		}
	}
	t.mu.RUnlock()
	for _, b := range rv.blocks(t.blocks) {
		for i := range b.ix.series {
			if s := &b.ix.series[i]; s.n > 0 {
				add(s.minT, s.maxT)
			}
		}
	}
	return minT, maxT, ok, nil
}
