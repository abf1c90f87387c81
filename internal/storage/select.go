package storage

import (
	"context"
	"slices"

	"github.com/hearth-profiler/hearth/internal/labels"
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
}

// StackValues are the merged values of one profile type per stack of one
// symbol table.
type StackValues struct {
	Type string // full profile type name
	Syms *Symbols
	// Values is indexed by stack node and holds samples that carry no
	// per-sample labels.
	Values []int64
	// Labeled holds samples with per-sample labels, by stack and set.
	Labeled map[LabeledStack]int64
	// Sets are the per-sample label sets that LabeledStack.Set indexes.
	Sets []labels.Labels
}

// LabeledStack is a stack node with a per-sample label set.
type LabeledStack struct{ Stack, Set uint32 }

// Point is one profile's total at time T (unix nanoseconds).
type Point struct {
	T int64
	V int64
}

// SeriesPoints are the totals of one series' profiles in time order.
type SeriesPoints struct {
	Labels labels.Labels
	Points []Point
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

// plan is a query's matchers split for one head.
type plan struct {
	series, sample []*labels.Matcher
	setOK          []bool // per sample set: passes the sample matchers
}

func (h *head) plan(ms []*labels.Matcher) plan {
	var p plan
	for _, m := range ms {
		if h.isSampleLabel(m.Name) {
			p.sample = append(p.sample, m)
		} else {
			p.series = append(p.series, m)
		}
	}
	if len(p.sample) > 0 {
		p.setOK = make([]bool, len(h.sampleSets))
		for i, set := range h.sampleSets {
			p.setOK[i] = labels.MatchLabels(set, p.sample...)
		}
	}
	return p
}

func (h *head) isSampleLabel(name string) bool {
	_, sample := h.sampleNames[name]
	_, series := h.seriesNames[name]
	return sample && !series
}

func (h *head) overlaps(start, end int64) bool {
	return len(h.all) > 0 && h.minT < end && h.maxT >= start
}

func (s *memSeries) overlaps(start, end int64) bool {
	return len(s.profiles) > 0 && s.minT < end && s.maxT >= start
}

// SelectStacks merges the selected samples per profile type and symbol
// table.
func (db *DB) SelectStacks(ctx context.Context, tenantID string, p SelectParams) ([]*StackValues, error) {
	t := db.lookupTenant(tenantID)
	if t == nil {
		return nil, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	h := t.head
	if !h.overlaps(p.Start, p.End) {
		return nil, nil
	}
	pl := h.plan(p.Matchers)
	syms := h.syms.snapshot()
	var keep []bool
	if p.Keep != nil {
		keep = p.Keep(syms)
	}
	byType := map[string]*StackValues{}
	for i, s := range h.all {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if !s.overlaps(p.Start, p.End) || !labels.MatchLabels(s.lbls, pl.series...) {
			continue
		}
		typ := s.lbls.Get(labels.ProfileType)
		sv := byType[typ]
		if sv == nil {
			sv = &StackValues{Type: typ, Syms: syms, Values: make([]int64, len(syms.StackParent)), Sets: h.sampleSets}
			byType[typ] = sv
		}
		for _, mp := range s.profiles {
			if mp.ts < p.Start || mp.ts >= p.End {
				continue
			}
			mergeProfile(sv, &mp, keep, pl)
		}
	}
	out := make([]*StackValues, 0, len(byType))
	for _, sv := range byType {
		out = append(out, sv)
	}
	slices.SortFunc(out, func(a, b *StackValues) int { return compareStrings(a.Type, b.Type) })
	return out, nil
}

func mergeProfile(sv *StackValues, mp *memProfile, keep []bool, pl plan) {
	if mp.sets == nil && keep == nil && pl.setOK == nil {
		vals := sv.Values
		for i, st := range mp.stacks {
			vals[st] += mp.values[i]
		}
		return
	}
	for i, st := range mp.stacks {
		if keep != nil && !keep[st] {
			continue
		}
		var set uint32
		if mp.sets != nil {
			set = mp.sets[i]
		}
		if pl.setOK != nil && !pl.setOK[set] {
			continue
		}
		if set == 0 {
			sv.Values[st] += mp.values[i]
			continue
		}
		if sv.Labeled == nil {
			sv.Labeled = make(map[LabeledStack]int64)
		}
		sv.Labeled[LabeledStack{st, set}] += mp.values[i]
	}
}

// profileTotal is a profile's total under the query's stack and sample
// filters.
func profileTotal(mp *memProfile, keep []bool, pl plan) int64 {
	if keep == nil && pl.setOK == nil {
		return mp.total
	}
	var sum int64
	for i, st := range mp.stacks {
		if keep != nil && !keep[st] {
			continue
		}
		if pl.setOK != nil {
			var set uint32
			if mp.sets != nil {
				set = mp.sets[i]
			}
			if !pl.setOK[set] {
				continue
			}
		}
		sum += mp.values[i]
	}
	return sum
}

// SelectSeries returns the total of each selected profile, per series.
func (db *DB) SelectSeries(ctx context.Context, tenantID string, p SelectParams) ([]SeriesPoints, error) {
	t := db.lookupTenant(tenantID)
	if t == nil {
		return nil, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	h := t.head
	if !h.overlaps(p.Start, p.End) {
		return nil, nil
	}
	pl := h.plan(p.Matchers)
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
		sp := SeriesPoints{Labels: s.lbls}
		for _, mp := range s.profiles {
			if mp.ts < p.Start || mp.ts >= p.End {
				continue
			}
			sp.Points = append(sp.Points, Point{mp.ts, profileTotal(&mp, keep, pl)})
		}
		slices.SortFunc(sp.Points, func(a, b Point) int { return compareInt64(a.T, b.T) })
		out = append(out, sp)
	}
	return out, nil
}

// Series returns the label sets of the selected series.
func (db *DB) Series(ctx context.Context, tenantID string, start, end int64, ms []*labels.Matcher) ([]labels.Labels, error) {
	t := db.lookupTenant(tenantID)
	if t == nil {
		return nil, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	h := t.head
	pl := h.plan(ms)
	var out []labels.Labels
	for _, s := range h.all {
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			out = append(out, s.lbls)
		}
	}
	slices.SortFunc(out, labels.Compare)
	return out, nil
}

// LabelNames returns the names of series labels, and of per-sample labels,
// of the selected series.
func (db *DB) LabelNames(ctx context.Context, tenantID string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	t := db.lookupTenant(tenantID)
	if t == nil {
		return nil, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	h := t.head
	pl := h.plan(ms)
	names := map[string]struct{}{}
	for _, s := range h.all {
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			s.lbls.Range(func(l labels.Label) { names[l.Name] = struct{}{} })
		}
	}
	if len(names) > 0 {
		for n := range h.sampleNames {
			names[n] = struct{}{}
		}
	}
	return sortedKeys(names), nil
}

// LabelValues returns the values of one label over the selected series,
// or over the per-sample label sets when name is a per-sample label.
func (db *DB) LabelValues(ctx context.Context, tenantID, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	t := db.lookupTenant(tenantID)
	if t == nil {
		return nil, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	h := t.head
	pl := h.plan(ms)
	vals := map[string]struct{}{}
	if h.isSampleLabel(name) {
		for _, set := range h.sampleSets {
			if v := set.Get(name); v != "" && labels.MatchLabels(set, pl.sample...) {
				vals[v] = struct{}{}
			}
		}
		return sortedKeys(vals), nil
	}
	for _, s := range h.all {
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			if v := s.lbls.Get(name); v != "" {
				vals[v] = struct{}{}
			}
		}
	}
	return sortedKeys(vals), nil
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
