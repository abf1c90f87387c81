package calc

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/hearth-profiler/hearth/internal/events"
)

// Filter selects events, as a TraceQL filter does.
type Filter interface {
	// Columns names what Match reads.
	Columns() events.Columns
	// Match sets sel[i] to true for each row i of b that the filter
	// selects. It is handed a sel of b.Len entries, all false.
	Match(b *events.Batch, sel []bool)
}

// Scan hands fn the events of a tenant's time range as Batches, one at a
// time, with at least the columns cols names. It stops at fn's first
// error and returns it. A batch may hold events out of the range only if
// it holds their start times: calc leaves them out, and asks for start
// times only when it needs them otherwise.
type Scan func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error

// Run computes q over the events in [from, until) that filter selects
// (every event, with a nil filter).
func Run(ctx context.Context, scan Scan, filter Filter, q Query, from, until time.Time) (*Result, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if !until.After(from) {
		return nil, queryErrorf("empty time range: until (%s) must be after from (%s)", until.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	r, err := newRunner(q, from, until)
	if err != nil {
		return nil, err
	}
	cols := r.columns()
	if filter != nil {
		cols = cols.Merge(filter.Columns())
	}
	err = scan(ctx, cols, func(b *events.Batch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return r.batch(b, filter)
	})
	if err != nil {
		return nil, fmt.Errorf("scan events: %w", err)
	}
	return r.result(), nil
}

// runner holds a query's state while batches go by. Every per-group
// state is kept per cell: a group's cell of step s is g·nsteps + s, and a
// group's totals are its cells merged at the end.
type runner struct {
	q         Query
	calcs     []Calc // the query's, then those only order and having need
	order     Order
	from      int64
	until     int64
	t0, step  int64 // the first step's start and the step; step 0: one
	nsteps    int
	maxGroups int

	by      []Field
	dicts   []*dict
	ids     [][]uint32       // per group-by field, the value of each row
	groupOf []int32          // one group-by field: group by value
	groupAt map[string]int32 // several: group by their values' numbers
	keyBuf  []byte
	keys    [][]uint32 // each group's values' numbers

	ngroups   int
	counts    []uint64
	nums      []*numState
	dists     []*distState
	examples  [][]example
	exWorst   []int64 // per group: the duration an example must beat
	scanned   int64
	matched   int64
	ungrouped int64

	sel   []bool
	rows  []int32
	cells []int32
	gids  []int32
}

// numState is what the numeric calculations over one field keep per
// cell; each kind only when a calculation needs it.
type numState struct {
	f     Field
	moms  []moments // sum, avg, min, max
	sks   []*sketch // percentiles
	heats []*hist   // heatmaps
	nc    []int32   // this batch's cells with a value...
	nv    []float64 // ...and the values
}

type distState struct {
	f    Field
	sets []*distinct
	hc   []int32
	hv   []uint64
}

// moments are the count, sum, minimum and maximum of a field's values.
// The sum is Neumaier's compensated sum, so that a sum of integers is
// exact while it fits in a float64's 53 bits and close after.
type moments struct {
	n          uint64
	sum, comp  float64
	minv, maxv float64
}

func (m *moments) add(x float64) {
	if m.n == 0 {
		m.minv, m.maxv = x, x
	} else if x < m.minv {
		m.minv = x
	} else if x > m.maxv {
		m.maxv = x
	}
	m.n++
	t := m.sum + x
	if math.Abs(m.sum) >= math.Abs(x) {
		m.comp += (m.sum - t) + x
	} else {
		m.comp += (x - t) + m.sum
	}
	m.sum = t
}

func (m *moments) merge(o *moments) {
	if o.n == 0 {
		return
	}
	if m.n == 0 {
		*m = *o
		return
	}
	m.minv, m.maxv = min(m.minv, o.minv), max(m.maxv, o.maxv)
	m.n += o.n
	m.add2(o.sum)
	m.comp += o.comp
}

// add2 adds x to the compensated sum only.
func (m *moments) add2(x float64) {
	t := m.sum + x
	if math.Abs(m.sum) >= math.Abs(x) {
		m.comp += (m.sum - t) + x
	} else {
		m.comp += (x - t) + m.sum
	}
	m.sum = t
}

type example struct {
	trace events.TraceID
	span  events.SpanID
	start int64
	dur   int64
}

func newRunner(q Query, from, until time.Time) (*runner, error) {
	r := &runner{q: q, from: from.UnixNano(), until: until.UnixNano(), by: q.By}
	r.calcs = append(r.calcs, q.calcs()...)
	r.order = q.order()
	extra := []Calc{r.order.Calc}
	for _, h := range q.Having {
		extra = append(extra, h.Calc)
	}
	for _, c := range extra {
		if !slices.ContainsFunc(r.calcs, func(d Calc) bool { return d.name == c.name }) {
			r.calcs = append(r.calcs, c)
		}
	}
	r.nsteps = 1
	if q.Step > 0 {
		r.step = int64(q.Step)
		r.t0 = floorDiv(r.from, r.step) * r.step
		n := (r.until - r.t0 + r.step - 1) / r.step
		if n > MaxSteps {
			return nil, queryErrorf("step %s over %s makes %d steps, more than %d: use a larger step", q.Step, until.Sub(from), n, MaxSteps)
		}
		r.nsteps = int(n)
	}
	r.maxGroups = q.MaxGroups
	if r.maxGroups == 0 {
		r.maxGroups = DefaultMaxGroups
	}
	r.maxGroups = max(1, min(r.maxGroups, MaxCells/r.nsteps))
	for _, c := range r.calcs {
		switch c.op {
		case opCount:
		case opCountDistinct:
			if r.dist(c.field) == nil {
				r.dists = append(r.dists, &distState{f: c.field})
			}
		default:
			if r.num(c.field) == nil {
				r.nums = append(r.nums, &numState{f: c.field})
			}
		}
	}
	for range r.by {
		r.dicts = append(r.dicts, newDict(r.maxGroups+1))
	}
	r.ids = make([][]uint32, len(r.by))
	if len(r.by) > 1 {
		r.groupAt = map[string]int32{}
	}
	if len(r.by) == 0 {
		r.addGroup(nil) // one group, even with no events: a count of 0 is an answer
	}
	return r, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (r *runner) num(f Field) *numState {
	for _, s := range r.nums {
		if s.f.name == f.name {
			return s
		}
	}
	return nil
}

func (r *runner) dist(f Field) *distState {
	for _, s := range r.dists {
		if s.f.name == f.name {
			return s
		}
	}
	return nil
}

// needs says which per-cell states the field's numeric calculations use.
func (r *runner) needs(f Field) (mom, sk, heat bool) {
	for _, c := range r.calcs {
		if c.field.name != f.name {
			continue
		}
		switch c.op {
		case opSum, opAvg, opMin, opMax:
			mom = true
		case opQuantile:
			sk = true
		case opHeatmap:
			heat = true
		}
	}
	return
}

func (r *runner) columns() events.Columns {
	var c events.Columns
	if r.nsteps > 1 || r.q.Examples > 0 {
		c.Intrinsics |= events.ColStart
	}
	for _, f := range r.by {
		c = c.Merge(f.Columns())
	}
	for _, k := range r.calcs {
		if k.op != opCount {
			c = c.Merge(k.field.Columns())
		}
	}
	if r.q.Examples > 0 {
		c.Intrinsics |= events.ColTraceID | events.ColSpanID | events.ColDuration
	}
	return c
}

// addGroup makes a group of the given values' numbers, and returns -1
// when the query keeps no more groups.
func (r *runner) addGroup(key []uint32) int32 {
	if r.ngroups >= r.maxGroups {
		return -1
	}
	g := int32(r.ngroups)
	r.ngroups++
	r.keys = append(r.keys, slices.Clone(key))
	n := r.nsteps
	r.counts = extend(r.counts, n)
	for _, s := range r.nums {
		mom, sk, heat := r.needs(s.f)
		if mom {
			s.moms = extend(s.moms, n)
		}
		if sk {
			s.sks = extend(s.sks, n)
		}
		if heat {
			s.heats = extend(s.heats, n)
		}
	}
	for _, s := range r.dists {
		s.sets = extend(s.sets, n)
	}
	if r.q.Examples > 0 {
		r.examples = append(r.examples, nil)
		r.exWorst = append(r.exWorst, math.MinInt64)
	}
	return g
}

// extend appends n zero values to s, doubling its capacity when it must
// grow: append alone grows large slices by a quarter, which for the cells
// of many groups times many steps copies them over and over.
func extend[T any](s []T, n int) []T {
	if len(s)+n > cap(s) {
		s = slices.Grow(s, max(n, cap(s)))
	}
	return append(s, make([]T, n)...)
}

var errNoStart = errors.New("a batch without start times: the scan did not read the columns asked for")

func (r *runner) batch(b *events.Batch, filter Filter) error {
	n := b.Len
	if n == 0 {
		return nil
	}
	if b.Start == nil && r.columns().Intrinsics&events.ColStart != 0 {
		return errNoStart
	}
	if cap(r.sel) < n {
		r.sel = make([]bool, n)
		r.rows = make([]int32, 0, n)
		r.cells = make([]int32, n)
		r.gids = make([]int32, n)
	}
	sel := r.sel[:n]
	if filter != nil {
		clear(sel)
		filter.Match(b, sel)
	}
	rows := r.rows[:0]
	var scanned int64
	if b.Start == nil { // the scan kept to the range
		scanned = int64(n)
		for i := range n {
			if filter == nil || sel[i] {
				rows = append(rows, int32(i))
			}
		}
	} else {
		from, until := r.from, r.until
		for i, t := range b.Start[:n] {
			if t < from || t >= until {
				continue
			}
			scanned++
			if filter == nil || sel[i] {
				rows = append(rows, int32(i))
			}
		}
	}
	r.scanned += scanned
	r.matched += int64(len(rows))
	if len(rows) == 0 {
		return nil
	}

	gids := r.gids[:len(rows)]
	if len(r.by) == 0 {
		clear(gids)
	} else {
		rows = r.group(b, rows, gids)
		gids = gids[:len(rows)]
	}
	cells := r.cells[:len(rows)]
	if r.nsteps == 1 {
		copy(cells, gids)
	} else {
		ns := int32(r.nsteps)
		for j, row := range rows {
			cells[j] = gids[j]*ns + int32((b.Start[row]-r.t0)/r.step)
		}
	}
	counts := r.counts
	for _, c := range cells {
		counts[c]++
	}
	for _, s := range r.nums {
		s.add(b, rows, cells)
	}
	for _, s := range r.dists {
		s.add(b, rows, cells)
	}
	if r.q.Examples > 0 {
		r.keepExamples(b, rows, gids)
	}
	return nil
}

// group sets each row's group, and drops the rows whose group the query
// has no room for (counting them in ungrouped). It returns the rows kept.
func (r *runner) group(b *events.Batch, rows []int32, gids []int32) []int32 {
	for i := range r.by {
		f := &r.by[i]
		d := r.dicts[i]
		d.newBatch()
		if cap(r.ids[i]) < len(rows) {
			r.ids[i] = make([]uint32, len(rows), cap(r.rows))
		}
		ids := r.ids[i][:len(rows)]
		r.ids[i] = ids
		v := f.view(b)
		if v.src == srcAttr && v.col2 == nil && v.strs == nil && v.col != nil {
			// The common case, one attribute column: no per-row switch on
			// the field's source.
			types, strs, nums := v.col.Types, v.col.Str, v.col.Num
			cache, gen := d.cache, d.gen
			for j, row := range rows {
				switch t := types[row]; t {
				case events.TypeString:
					// d.str, by hand: the compiler will not inline it.
					s := strs[row]
					p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
					e := &cache[(uint64(p)*ptrCacheMul)>>(64-ptrCacheBits)]
					if e.p == p && e.n == len(s) && e.gen == gen {
						ids[j] = e.id
					} else {
						ids[j] = d.strSlow(t, s, e, p)
					}
				case events.TypeNone:
					ids[j] = 0
				default:
					ids[j] = d.num(t, nums[row])
				}
			}
		} else {
			for j, row := range rows {
				ids[j] = d.id(v.at(row))
			}
		}
	}
	kept := rows[:0]
	if len(r.by) == 1 {
		ids := r.ids[0]
		for j, row := range rows {
			id := ids[j]
			g := int32(-1)
			if id != noID {
				if int(id) < len(r.groupOf) {
					g = r.groupOf[id]
				} else {
					for len(r.groupOf) <= int(id) {
						r.groupOf = append(r.groupOf, -1)
					}
				}
				if g < 0 {
					g = r.addGroup([]uint32{id})
					r.groupOf[id] = g
				}
			}
			if g < 0 {
				r.ungrouped++
				continue
			}
			gids[len(kept)] = g
			kept = append(kept, row)
		}
		return kept
	}
	key := make([]uint32, len(r.by))
	for j, row := range rows {
		full := false
		buf := r.keyBuf[:0]
		for i := range r.by {
			id := r.ids[i][j]
			full = full || id == noID
			key[i] = id
			buf = binary.LittleEndian.AppendUint32(buf, id)
		}
		r.keyBuf = buf
		g := int32(-1)
		if !full {
			var ok bool
			if g, ok = r.groupAt[string(buf)]; !ok {
				if g = r.addGroup(key); g >= 0 {
					r.groupAt[string(buf)] = g
				}
			}
		}
		if g < 0 {
			r.ungrouped++
			continue
		}
		gids[len(kept)] = g
		kept = append(kept, row)
	}
	return kept
}

func (s *numState) add(b *events.Batch, rows, cells []int32) {
	nc, nv := s.nc[:0], s.nv[:0]
	if s.f.src == srcDuration && b.Duration != nil {
		d := b.Duration
		for j, row := range rows {
			nc = append(nc, cells[j])
			nv = append(nv, float64(d[row]))
		}
	} else {
		v := s.f.view(b)
		for j, row := range rows {
			if x, ok := v.number(row); ok {
				nc = append(nc, cells[j])
				nv = append(nv, x)
			}
		}
	}
	s.nc, s.nv = nc, nv
	if s.moms != nil {
		moms := s.moms
		for j, c := range nc {
			moms[c].add(nv[j])
		}
	}
	if s.sks != nil {
		sks := s.sks
		for j, c := range nc {
			sk := sks[c]
			if sk == nil {
				sk = newSketch()
				sks[c] = sk
			}
			// sk.add, by hand for the common case of a positive value
			// inside the buckets the sketch has: the compiler will not
			// inline it.
			x := nv[j]
			if sk.bucketed && x > 0 && x >= sk.min && x <= sk.max {
				if i := sketchIndex(x) - sk.pos.base; uint(i) < uint(len(sk.pos.counts)) && sk.pos.counts[i] < math.MaxUint32 {
					sk.pos.counts[i]++
					sk.n++
					continue
				}
			}
			sk.add(x)
		}
	}
	if s.heats != nil {
		heats := s.heats
		for j, c := range nc {
			h := heats[c]
			if h == nil {
				h = &hist{}
				heats[c] = h
			}
			h.add(nv[j])
		}
	}
}

func (s *distState) add(b *events.Batch, rows, cells []int32) {
	hc, hv := s.hc[:0], s.hv[:0]
	v := s.f.view(b)
	for j, row := range rows {
		if h, ok := v.hash(row); ok {
			hc = append(hc, cells[j])
			hv = append(hv, h)
		}
	}
	s.hc, s.hv = hc, hv
	sets := s.sets
	for j, c := range hc {
		d := sets[c]
		if d == nil {
			d = &distinct{}
			sets[c] = d
		}
		d.add(hv[j])
	}
}

// keepExamples keeps each group's slowest events, the later first among
// equals (so that events without a duration give the most recent).
func (r *runner) keepExamples(b *events.Batch, rows, gids []int32) {
	if b.Duration == nil || b.TraceID == nil || b.SpanID == nil {
		return
	}
	n := r.q.Examples
	for j, row := range rows {
		g := gids[j]
		d := b.Duration[row]
		if d < r.exWorst[g] {
			continue
		}
		e := example{trace: b.TraceID[row], span: b.SpanID[row], start: b.Start[row], dur: d}
		ex := r.examples[g]
		i, _ := slices.BinarySearchFunc(ex, e, func(a, e example) int {
			return cmp.Or(cmp.Compare(e.dur, a.dur), cmp.Compare(e.start, a.start))
		})
		if i >= n {
			continue
		}
		if len(ex) == n {
			ex = ex[:n-1]
		}
		ex = slices.Insert(ex, i, e)
		r.examples[g] = ex
		if len(ex) == n {
			r.exWorst[g] = ex[n-1].dur
		}
	}
}

// merged holds a group's states over the whole range, or over one cell.
type merged struct {
	count uint64
	moms  []moments
	sks   []*sketch
	heats []*hist
	dists []*distinct
}

// mergeCells merges cells [lo, hi) into m, which it resets.
func (r *runner) mergeCells(m *merged, lo, hi int) {
	m.count = 0
	for c := lo; c < hi; c++ {
		m.count += r.counts[c]
	}
	m.moms = m.moms[:0]
	m.sks = m.sks[:0]
	m.heats = m.heats[:0]
	m.dists = m.dists[:0]
	for _, s := range r.nums {
		var mo moments
		var sk *sketch
		var h *hist
		for c := lo; c < hi; c++ {
			if s.moms != nil {
				mo.merge(&s.moms[c])
			}
			if s.sks != nil && s.sks[c] != nil {
				if hi-lo == 1 {
					sk = s.sks[c]
				} else {
					if sk == nil {
						sk = newSketch()
					}
					sk.merge(s.sks[c])
				}
			}
			if s.heats != nil && s.heats[c] != nil {
				if hi-lo == 1 {
					h = s.heats[c]
				} else {
					if h == nil {
						h = &hist{}
					}
					h.merge(s.heats[c])
				}
			}
		}
		m.moms = append(m.moms, mo)
		m.sks = append(m.sks, sk)
		m.heats = append(m.heats, h)
	}
	for _, s := range r.dists {
		var d *distinct
		for c := lo; c < hi; c++ {
			if s.sets[c] == nil {
				continue
			}
			if hi-lo == 1 {
				d = s.sets[c]
			} else {
				if d == nil {
					d = &distinct{}
				}
				d.merge(s.sets[c])
			}
		}
		m.dists = append(m.dists, d)
	}
}

// value is calculation c over the merged states; NaN when it has none.
func (r *runner) value(m *merged, c Calc) float64 {
	switch c.op {
	case opCount:
		return float64(m.count)
	case opCountDistinct:
		for i, s := range r.dists {
			if s.f.name == c.field.name {
				if m.dists[i] == nil {
					return 0
				}
				return math.Round(m.dists[i].estimate())
			}
		}
	}
	for i, s := range r.nums {
		if s.f.name != c.field.name {
			continue
		}
		mo := &m.moms[i]
		switch c.op {
		case opSum:
			if mo.n == 0 {
				return math.NaN()
			}
			return mo.sum + mo.comp
		case opAvg:
			if mo.n == 0 {
				return math.NaN()
			}
			return (mo.sum + mo.comp) / float64(mo.n)
		case opMin:
			if mo.n == 0 {
				return math.NaN()
			}
			return mo.minv
		case opMax:
			if mo.n == 0 {
				return math.NaN()
			}
			return mo.maxv
		case opQuantile:
			if m.sks[i] == nil {
				return math.NaN()
			}
			return m.sks[i].quantile(c.q)
		}
	}
	return math.NaN()
}

func (r *runner) heat(m *merged, c Calc) *hist {
	for i, s := range r.nums {
		if s.f.name == c.field.name {
			return m.heats[i]
		}
	}
	return nil
}

func (r *runner) result() *Result {
	res := &Result{
		From:      time.Unix(0, r.from).UTC(),
		Until:     time.Unix(0, r.until).UTC(),
		StepMs:    float64(r.step) / 1e6,
		By:        []string{},
		Units:     map[string]string{},
		Groups:    []Group{},
		Scanned:   r.scanned,
		Matched:   r.matched,
		Ungrouped: r.ungrouped,
		Truncated: r.ungrouped > 0,
	}
	for _, f := range r.by {
		res.By = append(res.By, f.name)
	}
	out := r.q.calcs()
	for _, c := range out {
		res.Calcs = append(res.Calcs, c.name)
		if u := c.Unit(); u != "" {
			res.Units[c.name] = u
		}
	}
	if res.Truncated {
		res.Warnings = append(res.Warnings, fmt.Sprintf("grouping by %s makes more than %d groups: %d matched events of the groups past that are in none, and groups that would rank high may be missing; narrow the filter or group by fewer fields", strings.Join(res.By, ", "), r.maxGroups, r.ungrouped))
	}

	// Rank every group by what order and having need, then compute the
	// rest for the groups listed only.
	type ranked struct {
		g     int
		order float64
		key   string
	}
	var m merged
	var list []ranked
	for g := 0; g < r.ngroups; g++ {
		r.mergeCells(&m, g*r.nsteps, (g+1)*r.nsteps)
		ok := true
		for _, h := range r.q.Having {
			if !h.holds(r.value(&m, h.Calc)) {
				ok = false
				break
			}
		}
		if ok {
			list = append(list, ranked{g: g, order: r.value(&m, r.order.Calc), key: r.keyText(g)})
		}
	}
	slices.SortFunc(list, func(a, b ranked) int {
		an, bn := math.IsNaN(a.order), math.IsNaN(b.order)
		switch {
		case an && bn:
		case an:
			return 1
		case bn:
			return -1
		case a.order != b.order:
			if r.order.Asc {
				return cmp.Compare(a.order, b.order)
			}
			return cmp.Compare(b.order, a.order)
		}
		return strings.Compare(a.key, b.key)
	})
	res.GroupCount = len(list)
	limit := r.q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if len(list) > limit {
		list = list[:limit]
	}

	// Heatmaps share their buckets across the listed groups and steps.
	layouts := map[string]*heatLayout{}
	for _, c := range out {
		if !c.IsHeatmap() {
			continue
		}
		l := &heatLayout{}
		s := r.num(c.field)
		for _, it := range list {
			for c := it.g * r.nsteps; c < (it.g+1)*r.nsteps; c++ {
				if h := s.heats[c]; h != nil {
					l.include(h)
				}
			}
		}
		layouts[c.name] = l
		if res.Buckets == nil {
			res.Buckets = map[string][]Bucket{}
		}
		res.Buckets[c.name] = l.buckets()
		if res.Buckets[c.name] == nil {
			res.Buckets[c.name] = []Bucket{}
		}
	}
	fill := func(m *merged) (map[string]Number, map[string][]uint64) {
		vals := map[string]Number{}
		var hists map[string][]uint64
		for _, c := range out {
			if !c.IsHeatmap() {
				vals[c.name] = Number(r.value(m, c))
				continue
			}
			if hists == nil {
				hists = map[string][]uint64{}
			}
			hists[c.name] = layouts[c.name].counts(r.heat(m, c))
		}
		return vals, hists
	}
	if r.step > 0 {
		res.Times = make([]float64, r.nsteps)
		for s := range res.Times {
			res.Times[s] = float64(r.t0+int64(s)*r.step) / 1e6
		}
	}
	for _, it := range list {
		g := it.g
		grp := Group{By: map[string]any{}}
		for i, f := range r.by {
			grp.By[f.name] = r.dicts[i].value(r.keys[g][i])
		}
		r.mergeCells(&m, g*r.nsteps, (g+1)*r.nsteps)
		grp.Values, grp.Histograms = fill(&m)
		if r.step > 0 {
			grp.Series = map[string][]Number{}
			for _, c := range out {
				if c.IsHeatmap() {
					if grp.HistogramSeries == nil {
						grp.HistogramSeries = map[string][][]uint64{}
					}
					grp.HistogramSeries[c.name] = make([][]uint64, r.nsteps)
				} else {
					grp.Series[c.name] = make([]Number, r.nsteps)
				}
			}
			for s := 0; s < r.nsteps; s++ {
				c := g*r.nsteps + s
				r.mergeCells(&m, c, c+1)
				for _, c := range out {
					if c.IsHeatmap() {
						grp.HistogramSeries[c.name][s] = layouts[c.name].counts(r.heat(&m, c))
					} else {
						grp.Series[c.name][s] = Number(r.value(&m, c))
					}
				}
			}
		}
		if r.q.Examples > 0 {
			for _, e := range r.examples[g] {
				ex := Example{
					Start:    time.Unix(0, e.start).UTC(),
					Duration: e.dur,
				}
				// An event that is not a span (a log line, a JSON line
				// without IDs) has no trace to open.
				if !e.trace.IsZero() {
					ex.TraceID = e.trace.String()
				}
				if !e.span.IsZero() {
					ex.SpanID = e.span.String()
				}
				grp.Examples = append(grp.Examples, ex)
			}
		}
		res.Groups = append(res.Groups, grp)
	}
	return res
}

// keyText is group g's values as text, to rank equal groups the same
// way every time.
func (r *runner) keyText(g int) string {
	var b strings.Builder
	for i := range r.by {
		fmt.Fprint(&b, r.dicts[i].value(r.keys[g][i]), "\x00")
	}
	return b.String()
}
