package calc

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/hearth-profiler/hearth/internal/events"
)

// Box selects events by a rectangle drawn on a duration heatmap.
type Box struct {
	// MinDuration <= duration < MaxDuration; a MaxDuration of 0 has no
	// upper bound.
	MinDuration, MaxDuration time.Duration
	// From <= start < Until; a zero time has no bound.
	From, Until time.Time
}

// CompareQuery says what Compare compares.
type CompareQuery struct {
	// Selection and Box select the events to explain: those the
	// filter selects and that fall in the box. At least one is needed.
	Selection Filter
	Box       *Box
	// Baseline selects what the selection is compared with; nil means
	// every other event the base filter selects.
	Baseline Filter
	// Defining names fields the selection is defined by, to show apart
	// from the ranking; the fields the selection's and baseline's
	// filters read, and duration when the box bounds it, are added.
	Defining []string
	// Values is how many values to list per field; 0 means 10.
	Values int
	// MaxValues bounds the distinct values tracked per field; 0 means
	// DefaultMaxValues.
	MaxValues int
	// SampleSize bounds the events per side whose values are counted
	// at each sampling rate; 0 means DefaultSampleSize.
	SampleSize int
}

// Defaults of a CompareQuery.
const (
	DefaultMaxValues  = 1000
	DefaultSampleSize = 1 << 16
	// MaxFields bounds the attributes compared; the rest are left out,
	// with a warning.
	MaxFields = 2000
	// rareCount is the number of sampled events a value needs on one
	// side or the other to be compared on its own rather than pooled
	// with the other rare values.
	rareCount = 5
	// numericExact is how many distinct numbers a field may have before
	// it is compared by ranges (powers of two) rather than by value, so
	// that status codes stay values and latencies become ranges.
	numericExact = 16
)

// Comparison is how every field is distributed in the selection and in
// the baseline, fields that differ most first.
type Comparison struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// SelectionCount and BaselineCount are the events on each side;
	// Scanned those in the time range.
	SelectionCount int64 `json:"selection_count"`
	BaselineCount  int64 `json:"baseline_count"`
	Scanned        int64 `json:"scanned"`
	// SelectionSampled and BaselineSampled are the events whose values
	// were counted: all of them up to the sample size, and past it a
	// sample, whose shares are weighted to stand for every event.
	SelectionSampled int64 `json:"selection_sampled"`
	BaselineSampled  int64 `json:"baseline_sampled"`
	// Attributes are the fields ranked by score, best first.
	Attributes []AttributeDiff `json:"attributes"`
	// Defining are the fields the selection is defined by, which differ
	// by construction: shown, not ranked.
	Defining []AttributeDiff `json:"defining"`
	Warnings []string        `json:"warnings,omitempty"`
}

// AttributeDiff is one field's distributions on the two sides.
type AttributeDiff struct {
	Attribute string `json:"attribute"`
	// Score, from 0 to 1, is how differently the field's values are
	// distributed: the largest difference of one value's share between
	// the two sides, less what sampling noise alone would give (for a
	// number compared by ranges, the total variation distance over its
	// ranges, less noise). Values too rare to compare (fewer than 5
	// events on both sides) are pooled into one, which does not score.
	Score float64 `json:"score"`
	// Unit is "ns" for the duration, whose ranges are nanoseconds.
	Unit string `json:"unit,omitempty"`
	// HighCardinality says most events have a value rare on both sides,
	// like an ID per request: such a field scores on its few frequent
	// values only.
	HighCardinality bool         `json:"high_cardinality"`
	Values          []ValueShare `json:"values"`
}

// ValueShare is one value's share of the events on each side.
type ValueShare struct {
	// Value is the value: a string, number or bool; null for a range,
	// for the events without the field, and for the other values.
	Value any `json:"value"`
	// Range is set for a numeric field compared by ranges.
	Range *Bucket `json:"range,omitempty"`
	// Absent marks the events that lack the field.
	Absent bool `json:"absent,omitempty"`
	// Other marks every value not listed on its own.
	Other          bool    `json:"other,omitempty"`
	SelectionShare float64 `json:"selection_share"`
	BaselineShare  float64 `json:"baseline_share"`
}

// compareFields are the intrinsics compare looks at besides attributes.
var compareFields = []string{"name", "resource.service.name", "status", "kind", "statusMessage", "duration"}

// Compare ranks every field (attributes, and name, service, status,
// kind, status message and duration) by how differently its values are
// distributed among the selected events and among the baseline, within
// the events of [from, until) that base selects (every event, with a nil
// base). It reads everything scan gives; ComparePicked reads less.
func Compare(ctx context.Context, scan Scan, base Filter, q CompareQuery, from, until time.Time) (*Comparison, error) {
	return ComparePicked(ctx, PickAfter(scan), base, q, from, until)
}

// ComparePicked is Compare over a PickScan: the filters' columns are read
// for every event, the fields compared for the sampled events alone.
func ComparePicked(ctx context.Context, scan PickScan, base Filter, q CompareQuery, from, until time.Time) (*Comparison, error) {
	if q.Selection == nil && q.Box == nil {
		return nil, queryErrorf("compare needs a selection: a filter, a box, or both")
	}
	if !until.After(from) {
		return nil, queryErrorf("empty time range: until (%s) must be after from (%s)", until.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	if q.Box != nil && q.Box.MaxDuration != 0 && q.Box.MaxDuration <= q.Box.MinDuration {
		return nil, queryErrorf("box: duration %s to %s is empty", q.Box.MinDuration, q.Box.MaxDuration)
	}
	if q.Values < 0 || q.MaxValues < 0 || q.SampleSize < 0 {
		return nil, queryErrorf("compare: values, max values and sample size must not be negative")
	}
	c := newComparer(q, from, until)
	first := events.Columns{Intrinsics: events.ColStart | events.ColDuration}
	for _, f := range []Filter{base, q.Selection, q.Baseline} {
		if f != nil {
			first = first.Merge(f.Columns())
		}
	}
	then := events.Columns{Intrinsics: events.ColName | events.ColService | events.ColStatus | events.ColKind | events.ColStatusMessage, AllAttrs: true}
	var pickErr error
	pick := func(b *events.Batch) []int {
		if pickErr == nil {
			pickErr = ctx.Err()
		}
		if pickErr != nil {
			return nil
		}
		var rows []int
		rows, pickErr = c.pick(b, base)
		return rows
	}
	err := scan(ctx, first, pick, then, func(b *events.Batch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return c.add(b)
	})
	if err = cmp.Or(pickErr, err); err != nil {
		return nil, fmt.Errorf("scan events: %w", err)
	}
	return c.result(), nil
}

// PickScan reads events in two steps: first's columns for every event in
// the range, then, of each batch, then's columns for the rows pick
// returns (ascending indexes), and fn gets those rows with both. fn gets
// the batches in the order of the picks that chose them, but pick may
// be called for later batches before fn has the earlier ones; a pick
// that returns no rows has no batch. Storage reads the second
// step for the picked rows alone, so that a query that samples events
// reads most columns for the sample only.
type PickScan func(ctx context.Context, first events.Columns, pick func(*events.Batch) []int, then events.Columns, fn func(*events.Batch) error) error

// PickAfter is the PickScan of a scan that reads in one step: every
// column of every event, picked after.
func PickAfter(scan Scan) PickScan {
	return func(ctx context.Context, first events.Columns, pick func(*events.Batch) []int, then events.Columns, fn func(*events.Batch) error) error {
		return scan(ctx, first.Merge(then), func(b *events.Batch) error {
			rows := pick(b)
			if len(rows) == 0 {
				return nil
			}
			b.Keep(rows)
			return fn(b)
		})
	}
}

type comparer struct {
	q           CompareQuery
	from, until int64
	maxValues   int
	sampleSize  int

	fields   map[string]*cmpField
	order    []*cmpField
	intrins  []*cmpField
	dropped  int
	defining map[string]bool

	// Per side (0 selection, 1 baseline): events, events sampled, the
	// sampled events' total weight, and the sampling state: an event is
	// sampled with probability 1/stride and then weighs stride.
	count    [2]int64
	sampled  [2]int64
	total    [2]uint64
	stride   [2]uint64
	atStride [2]int
	rng      uint64
	scanned  int64

	selB, selS, selL []bool
	// pending are the picks whose batches add has not seen yet, oldest
	// first: a scan may pick from later batches before it hands over
	// earlier ones.
	pending []pickedRows
}

// pickedRows says what each sampled event of a picked batch counts for:
// rows[j] is its index in the batch (an event on both sides comes
// twice), side[j] the side, weight[j] the events it stands for.
type pickedRows struct {
	rows   []int32
	side   []uint8
	weight []uint32
}

func newComparer(q CompareQuery, from, until time.Time) *comparer {
	c := &comparer{
		q: q, from: from.UnixNano(), until: until.UnixNano(),
		maxValues: cmp.Or(q.MaxValues, DefaultMaxValues), sampleSize: cmp.Or(q.SampleSize, DefaultSampleSize),
		fields: map[string]*cmpField{}, defining: map[string]bool{},
		stride: [2]uint64{1, 1}, rng: 0x9e3779b97f4a7c15,
	}
	for _, name := range compareFields {
		f := mustParseField(name)
		cf := c.field(f)
		c.intrins = append(c.intrins, cf)
	}
	for _, d := range q.Defining {
		if f, err := ParseField(d); err == nil {
			d = f.name
		}
		c.defining[d] = true
	}
	for _, f := range []Filter{q.Selection, q.Baseline} {
		if f == nil {
			continue
		}
		cols := f.Columns()
		for src, col := range intrinsicColumn {
			if cols.Intrinsics&col != 0 {
				c.defining[canonicalIntrinsic[src]] = true
			}
		}
		for _, k := range cols.Attrs {
			c.defining[keyField(k).name] = true
		}
	}
	if b := q.Box; b != nil && (b.MinDuration != 0 || b.MaxDuration != 0) {
		c.defining["duration"] = true
	}
	return c
}

func mustParseField(s string) Field {
	f, err := ParseField(s)
	if err != nil {
		panic(err)
	}
	return f
}

// keyField is the field of a scoped attribute key as a batch names it.
func keyField(key string) Field {
	for _, scope := range []string{events.ScopeSpan, events.ScopeResource} {
		if rest, ok := strings.CutPrefix(key, scope); ok && rest != "" {
			return attrField(scope, rest)
		}
	}
	return Field{src: srcAttr, keys: []string{key}, name: key}
}

func (c *comparer) field(f Field) *cmpField {
	if cf := c.fields[f.name]; cf != nil {
		return cf
	}
	cf := newCmpField(f, c.maxValues)
	c.fields[f.name] = cf
	c.order = append(c.order, cf)
	return cf
}

func (c *comparer) random() uint64 {
	// xorshift64: a deterministic sample, so that the same comparison
	// over the same events gives the same answer.
	c.rng ^= c.rng << 13
	c.rng ^= c.rng >> 7
	c.rng ^= c.rng << 17
	return c.rng
}

// pick matches b's events against the filters and the box, samples
// each side, and returns the rows sampled on either side; what each
// counts for waits in c.pending for add.
func (c *comparer) pick(b *events.Batch, base Filter) ([]int, error) {
	n := b.Len
	if n == 0 {
		return nil, nil
	}
	if b.Start == nil || b.Duration == nil {
		return nil, fmt.Errorf("a batch without start times or durations: the scan did not read the columns asked for")
	}
	if cap(c.selB) < n {
		c.selB, c.selS, c.selL = make([]bool, n), make([]bool, n), make([]bool, n)
	}
	match := func(f Filter, sel []bool) []bool {
		sel = sel[:n]
		clear(sel)
		if f == nil {
			return nil
		}
		f.Match(b, sel)
		return sel
	}
	inBase, inSel, inLine := match(base, c.selB), match(c.q.Selection, c.selS), match(c.q.Baseline, c.selL)
	box := c.q.Box
	var boxFrom, boxUntil int64 = math.MinInt64, math.MaxInt64
	var minD, maxD int64 = math.MinInt64, math.MaxInt64
	if box != nil {
		if !box.From.IsZero() {
			boxFrom = box.From.UnixNano()
		}
		if !box.Until.IsZero() {
			boxUntil = box.Until.UnixNano()
		}
		minD = int64(box.MinDuration)
		if box.MaxDuration != 0 {
			maxD = int64(box.MaxDuration)
		}
	}
	var rows []int32
	var side []uint8
	var weight []uint32
	var picked []int
	for i := range n {
		t := b.Start[i]
		if t < c.from || t >= c.until {
			continue
		}
		c.scanned++
		if inBase != nil && !inBase[i] {
			continue
		}
		d := b.Duration[i]
		sel := (inSel == nil || inSel[i]) && t >= boxFrom && t < boxUntil && d >= minD && d < maxD
		line := !sel
		if inLine != nil {
			line = inLine[i]
		}
		for s, on := range [2]bool{sel, line} {
			if !on {
				continue
			}
			c.count[s]++
			st := c.stride[s]
			if st > 1 && c.random()&(st-1) != 0 {
				continue
			}
			c.sampled[s]++
			c.total[s] += st
			// An event on both sides is picked once; rows holds its
			// index in the picked batch.
			if len(picked) == 0 || picked[len(picked)-1] != i {
				picked = append(picked, i)
			}
			rows, side, weight = append(rows, int32(len(picked)-1)), append(side, uint8(s)), append(weight, uint32(st))
			if c.atStride[s]++; c.atStride[s] >= c.sampleSize && st < 1<<31 {
				c.stride[s] *= 2
				c.atStride[s] = 0
			}
		}
	}
	if len(picked) > 0 {
		c.pending = append(c.pending, pickedRows{rows, side, weight})
	}
	return picked, nil
}

// add counts the fields of b, the rows of the oldest pick not yet added.
func (c *comparer) add(b *events.Batch) error {
	if len(c.pending) == 0 {
		return fmt.Errorf("BUG: a batch of %d events that no pick chose", b.Len)
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	rows, side, weight := p.rows, p.side, p.weight
	if last := rows[len(rows)-1]; int(last) >= b.Len {
		return fmt.Errorf("BUG: a picked batch of %d events for a pick of %d", b.Len, last+1)
	}
	for _, cf := range c.intrins {
		cf.add(cf.f.view(b), rows, side, weight)
	}
	for key, col := range b.Attrs {
		cf := c.fields[key]
		if cf == nil {
			f := keyField(key)
			if f.src != srcAttr {
				continue // resource.service.name is the Service column
			}
			if cf = c.fields[f.name]; cf == nil {
				if len(c.order)-len(c.intrins) >= MaxFields {
					c.dropped++
					continue
				}
				cf = c.field(f)
			}
			c.fields[key] = cf // the batch's key finds it directly next time
		}
		cf.add(view{src: srcAttr, col: col, b: b}, rows, side, weight)
	}
	return nil
}

// cmpField counts one field's values on the two sides.
type cmpField struct {
	f        Field
	ranges   bool // numbers are counted by range
	maxVals  int
	strs     map[string]int32
	nums     map[numKey]int32
	entries  []cmpEntry
	numbers  int       // distinct numbers seen while by value
	other    [2]uint64 // weight of values evicted or never tracked
	present  [2]uint64 // weight of events with the field
	distinct int       // values ever admitted
	gen      uint32
	cache    *[ptrCacheSize]ptrEntry
	prevKey  numKey
	prevIdx  int32
	prevGen  uint32
}

type cmpEntry struct {
	t events.Type
	s string
	n uint64
	w [2]uint64 // weight per side
	k [2]uint32 // sampled events per side
}

// kindRange keys a numeric range: n is the range's index (see rangeOf).
const kindRange = events.Type(200)

func newCmpField(f Field, maxVals int) *cmpField {
	return &cmpField{
		f: f, ranges: f.IsDuration(), maxVals: maxVals,
		strs: map[string]int32{}, nums: map[numKey]int32{},
		cache: new([ptrCacheSize]ptrEntry), gen: 1,
	}
}

// rangeOf is the power-of-two range of v, as a key: [2^e, 2^(e+1)) for
// positive values, its mirror for negative ones, and 0 alone.
func rangeOf(v float64) uint64 {
	switch {
	case v == 0:
		return 0
	case v > 0:
		return 1<<32 | uint64(uint32(int32(math.Ilogb(v))))
	}
	return 2<<32 | uint64(uint32(int32(math.Ilogb(-v))))
}

func rangeBucket(k uint64) Bucket {
	e := int(int32(uint32(k)))
	switch k >> 32 {
	case 1:
		return Bucket{Lo: math.Ldexp(1, e), Hi: math.Ldexp(1, e+1)}
	case 2:
		return Bucket{Lo: -math.Ldexp(1, e+1), Hi: -math.Ldexp(1, e)}
	}
	return Bucket{}
}

func (cf *cmpField) add(v view, rows []int32, side []uint8, weight []uint32) {
	cf.gen++
	for j, row := range rows {
		t, s, n := v.at(row)
		if t == events.TypeNone {
			continue
		}
		sd, w := side[j], uint64(weight[j])
		cf.present[sd] += w
		i := cf.lookup(t, s, n)
		if i < 0 {
			cf.other[sd] += w
			continue
		}
		e := &cf.entries[i]
		e.w[sd] += w
		e.k[sd]++
	}
}

// lookup returns the entry of a value, making one when new; -1 when the
// value goes uncounted.
func (cf *cmpField) lookup(t events.Type, s string, n uint64) int32 {
	switch t {
	case events.TypeString, kindTraceID, kindSpanID:
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		e := &cf.cache[(uint64(p)*ptrCacheMul)>>(64-ptrCacheBits)]
		if e.p == p && e.n == len(s) && e.gen == cf.gen {
			return int32(e.id)
		}
		i, ok := cf.strs[s]
		if !ok {
			i = cf.admit(cmpEntry{t: t, s: strings.Clone(s)})
			if i < 0 {
				return -1
			}
		}
		*e = ptrEntry{p: p, n: len(s), gen: cf.gen, id: uint32(i)}
		return i
	case events.TypeInt, events.TypeFloat:
		f := float64(int64(n))
		if t == events.TypeFloat {
			f = math.Float64frombits(n)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			break // as a value: there is no range for it
		}
		if cf.ranges {
			t, n = kindRange, rangeOf(f)
		}
	}
	k := numKey{t, n}
	if k == cf.prevKey && cf.prevGen == cf.gen {
		return cf.prevIdx // a run of one number: a status code, a bool
	}
	i, ok := cf.nums[k]
	if !ok {
		if t == events.TypeInt || t == events.TypeFloat {
			if cf.numbers++; cf.numbers > numericExact {
				cf.toRanges()
				return cf.lookup(t, s, n)
			}
		}
		if i = cf.admit(cmpEntry{t: t, n: n}); i < 0 {
			return -1
		}
	}
	cf.prevKey, cf.prevIdx, cf.prevGen = k, i, cf.gen
	return i
}

// admit adds an entry, first evicting the least frequent half when the
// field tracks as many as it may: values frequent on either side stay,
// and the counts evicted go to other, so that totals still add up.
func (cf *cmpField) admit(e cmpEntry) int32 {
	if len(cf.entries) >= cf.maxVals {
		cf.evict()
	}
	cf.distinct++
	i := int32(len(cf.entries))
	cf.entries = append(cf.entries, e)
	if e.t == events.TypeString || e.t == kindTraceID || e.t == kindSpanID {
		cf.strs[e.s] = i
	} else {
		cf.nums[numKey{e.t, e.n}] = i
	}
	return i
}

// share is an entry's largest share of a side's weight so far.
func (cf *cmpField) share(e *cmpEntry) float64 {
	var m float64
	for s := range 2 {
		if cf.present[s] > 0 {
			m = max(m, float64(e.w[s])/float64(cf.present[s]))
		}
	}
	return m
}

func (cf *cmpField) evict() {
	shares := make([]float64, len(cf.entries))
	for i := range cf.entries {
		shares[i] = cf.share(&cf.entries[i])
	}
	sorted := slices.Clone(shares)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	cf.rebuild(func(i int) bool { return shares[i] > median }, true)
}

// toRanges switches a field from counting numbers by value to counting
// them by range, merging what it counted so far.
func (cf *cmpField) toRanges() {
	cf.ranges = true
	old := cf.entries
	finite := func(e *cmpEntry) (float64, bool) {
		switch e.t {
		case events.TypeInt:
			return float64(int64(e.n)), true
		case events.TypeFloat:
			f := math.Float64frombits(e.n)
			return f, !math.IsNaN(f) && !math.IsInf(f, 0)
		}
		return 0, false
	}
	cf.rebuild(func(i int) bool { _, ok := finite(&old[i]); return !ok }, false)
	for _, e := range old {
		f, ok := finite(&e)
		if !ok {
			continue
		}
		i := cf.lookup(kindRange, "", rangeOf(f))
		if i < 0 {
			for s := range 2 {
				cf.other[s] += e.w[s]
			}
			continue
		}
		for s := range 2 {
			cf.entries[i].w[s] += e.w[s]
			cf.entries[i].k[s] += e.k[s]
		}
	}
}

// rebuild keeps the entries keep says yes to, counting the others'
// weight in other when spill is set.
func (cf *cmpField) rebuild(keep func(i int) bool, spill bool) {
	kept := make([]cmpEntry, 0, cf.maxVals)
	clear(cf.strs)
	clear(cf.nums)
	for i, e := range cf.entries {
		if !keep(i) {
			if spill {
				for s := range 2 {
					cf.other[s] += e.w[s]
				}
			}
			continue
		}
		j := int32(len(kept))
		kept = append(kept, e)
		if e.t == events.TypeString || e.t == kindTraceID || e.t == kindSpanID {
			cf.strs[e.s] = j
		} else {
			cf.nums[numKey{e.t, e.n}] = j
		}
	}
	cf.entries = kept
	cf.gen++ // the cache points at old positions
}

func (c *comparer) result() *Comparison {
	res := &Comparison{
		From: time.Unix(0, c.from).UTC(), Until: time.Unix(0, c.until).UTC(),
		SelectionCount: c.count[0], BaselineCount: c.count[1], Scanned: c.scanned,
		SelectionSampled: c.sampled[0], BaselineSampled: c.sampled[1],
		Attributes: []AttributeDiff{}, Defining: []AttributeDiff{},
	}
	if c.dropped > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("more than %d attributes: the rest are not compared", MaxFields))
	}
	switch {
	case c.count[0] == 0:
		res.Warnings = append(res.Warnings, "the selection holds no events: nothing to compare")
		return res
	case c.count[1] == 0:
		res.Warnings = append(res.Warnings, "the baseline holds no events: nothing to compare with")
		return res
	}
	top := cmp.Or(c.q.Values, 10)
	for _, cf := range c.order {
		if cf.present[0] == 0 && cf.present[1] == 0 {
			// A key of the range that none of the compared events has:
			// "absent, 100 % against 100 %" says nothing.
			continue
		}
		d := c.diff(cf, top)
		if c.defining[cf.f.name] {
			res.Defining = append(res.Defining, d)
		} else {
			res.Attributes = append(res.Attributes, d)
		}
	}
	rank := func(a, b AttributeDiff) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), strings.Compare(a.Attribute, b.Attribute))
	}
	slices.SortFunc(res.Attributes, rank)
	slices.SortFunc(res.Defining, rank)
	return res
}

// diff scores one field and lists its top values.
func (c *comparer) diff(cf *cmpField, top int) AttributeDiff {
	d := AttributeDiff{Attribute: cf.f.name, Values: []ValueShare{}}
	if cf.f.IsDuration() {
		d.Unit = "ns"
	}
	total := [2]float64{float64(c.total[0]), float64(c.total[1])}
	shares := func(w [2]uint64) (float64, float64) {
		return float64(w[0]) / total[0], float64(w[1]) / total[1]
	}
	// The bins: each value frequent enough on one side, the events
	// without the field, and every other value pooled.
	type bin struct {
		w  [2]uint64
		vs ValueShare
	}
	var bins []bin
	pooled := cf.other
	for i := range cf.entries {
		e := &cf.entries[i]
		if e.k[0] < rareCount && e.k[1] < rareCount {
			pooled[0] += e.w[0]
			pooled[1] += e.w[1]
			continue
		}
		vs := ValueShare{}
		if e.t == kindRange {
			r := rangeBucket(e.n)
			vs.Range = &r
		} else {
			vs.Value = outValue(e.t, e.s, e.n)
		}
		bins = append(bins, bin{w: e.w, vs: vs})
	}
	absent := [2]uint64{c.total[0] - cf.present[0], c.total[1] - cf.present[1]}
	if absent[0] != 0 || absent[1] != 0 {
		bins = append(bins, bin{w: absent, vs: ValueShare{Absent: true}})
	}
	if pooled[0] != 0 || pooled[1] != 0 {
		bins = append(bins, bin{w: pooled, vs: ValueShare{Other: true}})
	}
	// The score is the largest difference of one value's share between
	// the two sides, less what it would be were both sides samples of
	// one distribution (a normal approximation: E|X| = σ·√(2/π)). One
	// value, not the sum over values (total variation distance): a field
	// finer than the one that explains the selection (the host within
	// the slow region) has as large a total distance, spread over many
	// values, and would rank above the region; the region has the one
	// value that says it ("93 % region=eu-west-3 against 8 %"). The
	// pooled rare values are not one value and do not score.
	//
	// A number compared by ranges is the exception: its ranges are cuts
	// of one scale, and a shift of its distribution (slower requests)
	// spreads over several; it scores the total distance, half the sum
	// of its ranges' differences, less their noise.
	n0, n1 := float64(c.sampled[0]), float64(c.sampled[1])
	ranged := false
	var tvd, tvdNoise float64
	for i := range bins {
		s0, s1 := shares(bins[i].w)
		bins[i].vs.SelectionShare, bins[i].vs.BaselineShare = s0, s1
		p := (s0*n0 + s1*n1) / (n0 + n1)
		noise := math.Sqrt(2/math.Pi) * math.Sqrt(p*(1-p)*(1/n0+1/n1))
		tvd += math.Abs(s0 - s1)
		tvdNoise += noise
		ranged = ranged || bins[i].vs.Range != nil
		if !bins[i].vs.Other {
			d.Score = max(d.Score, math.Abs(s0-s1)-noise)
		}
	}
	if ranged {
		d.Score = max(0, (tvd-tvdNoise)/2)
	}
	if pw := float64(cf.present[0] + cf.present[1]); pw > 0 {
		d.HighCardinality = float64(pooled[0]+pooled[1])/pw > 0.5
	}
	// List values by how much their shares differ, at most top of
	// them; the rest and the pooled ones last, as other.
	slices.SortFunc(bins, func(a, b bin) int {
		if a.vs.Other != b.vs.Other {
			if a.vs.Other {
				return 1
			}
			return -1
		}
		da := math.Abs(a.vs.SelectionShare - a.vs.BaselineShare)
		db := math.Abs(b.vs.SelectionShare - b.vs.BaselineShare)
		return cmp.Or(cmp.Compare(db, da), cmp.Compare(b.vs.SelectionShare, a.vs.SelectionShare))
	})
	other := ValueShare{Other: true}
	for i, b := range bins {
		if i < top && !b.vs.Other {
			d.Values = append(d.Values, b.vs)
			continue
		}
		other.SelectionShare += b.vs.SelectionShare
		other.BaselineShare += b.vs.BaselineShare
	}
	if other.SelectionShare != 0 || other.BaselineShare != 0 {
		d.Values = append(d.Values, other)
	}
	return d
}
