package calc

import (
	"math"
	"slices"
)

// store counts values by bucket index, densely over the range of indexes
// seen. Counts are 32 bits, which halves the memory of a query with many
// cells; a bucket saturates at 2^32-1 rather than wrap, which takes more
// than four billion events in one bucket of one group and step. Once that range would pass maxBuckets, the lowest buckets are
// folded into the lowest one kept: accuracy goes where values are large.
type store struct {
	counts []uint32
	base   int // the bucket index of counts[0]
}

// maxBuckets bounds a store: 64 octaves at 64 buckets per octave, which
// holds every duration from 1 ns to 292 years unfolded.
const maxBuckets = 4096

func (s *store) add(idx int, c uint64) {
	i := idx - s.base
	if uint(i) >= uint(len(s.counts)) {
		i = s.extend(idx)
	}
	s.counts[i] = uint32(min(uint64(s.counts[i])+c, math.MaxUint32))
}

// extend makes room for idx and returns its position in counts.
func (s *store) extend(idx int) int {
	ulo, uhi, used := s.bounds()
	if !used {
		if len(s.counts) == 0 {
			s.counts = make([]uint32, 32)
		}
		s.base = idx - len(s.counts)/2
		return idx - s.base
	}
	lo, hi := min(ulo, idx), max(uhi, idx)
	if hi-lo+1 > maxBuckets {
		// Fold: keep the highest maxBuckets, add the rest to the first.
		nlo := hi - maxBuckets + 1
		n := make([]uint32, maxBuckets)
		for i, c := range s.counts {
			j := max(s.base+i-nlo, 0)
			n[j] = uint32(min(uint64(n[j])+uint64(c), math.MaxUint32))
		}
		s.counts, s.base = n, nlo
		return max(idx-nlo, 0)
	}
	// Grow by half again on the side that needed room, so that a slow
	// drift of values costs few copies; the slack never makes a fold.
	slack := max(len(s.counts)/2, 16)
	if idx < ulo {
		lo = max(lo-slack, hi-maxBuckets+1)
	} else {
		hi = min(hi+slack, lo+maxBuckets-1)
	}
	n := make([]uint32, hi-lo+1)
	copy(n[ulo-lo:], s.counts[ulo-s.base:uhi-s.base+1])
	s.counts, s.base = n, lo
	return idx - lo
}

func (s *store) merge(o *store) {
	for i, c := range o.counts {
		if c != 0 {
			s.add(o.base+i, uint64(c))
		}
	}
}

// bounds returns the lowest and highest index holding a count, and false
// when none does.
func (s *store) bounds() (lo, hi int, ok bool) {
	first, last := -1, -1
	for i, c := range s.counts {
		if c != 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0, 0, false
	}
	return s.base + first, s.base + last, true
}

func (s *store) count(idx int) uint64 {
	i := idx - s.base
	if uint(i) >= uint(len(s.counts)) {
		return 0
	}
	return uint64(s.counts[i])
}

// sketch estimates quantiles of a stream of numbers with a bounded
// relative error, and merges with others exactly (bucket counts add).
//
// A positive value's bucket is its float64 bit pattern shifted right to
// keep the exponent and the top sketchBits bits of the mantissa: 64
// buckets per power of two, each no wider than 1/64 of its lower bound.
// A bucket's midpoint is then within 1/128 (0.79 %) of any value in it.
// This is the log-linear layout of HDR histograms rather than DDSketch's
// pure logarithmic one: up to twice the buckets for the same accuracy,
// but the index is one shift, not a logarithm, on every event.
//
// The first sketchRaw values are kept as they are, and their quantiles
// are exact: a query with a step has many cells of few events each, for
// which buckets would cost more memory and time than they save. Past
// that, a cell costs 8 bytes per bucket between its lowest and highest
// value: 3 KiB for values spread over 6 powers of two.
type sketch struct {
	n uint64
	// min and max are exact; +Inf and -Inf while n is 0 (newSketch).
	min, max float64
	// raw holds the values until there are more than sketchRaw.
	raw      []float64
	bucketed bool
	pos, neg store // neg counts -v for negative values
	zero     uint64
}

const (
	sketchRaw   = 64
	sketchBits  = 6
	sketchShift = 52 - sketchBits
	// SketchRelativeError bounds how far a percentile may be from the
	// value of the rank it estimates, relative to that value.
	SketchRelativeError = 1.0 / (1 << (sketchBits + 1))
)

func sketchIndex(v float64) int { return int(math.Float64bits(v) >> sketchShift) }

func sketchMid(idx int) float64 {
	lo := math.Float64frombits(uint64(idx) << sketchShift)
	hi := math.Float64frombits(uint64(idx+1) << sketchShift)
	return lo + (hi-lo)/2
}

func newSketch() *sketch { return &sketch{min: math.Inf(1), max: math.Inf(-1)} }

// add counts v, which must be finite.
func (s *sketch) add(v float64) {
	s.min, s.max = min(s.min, v), max(s.max, v)
	if !s.bucketed {
		if len(s.raw) < sketchRaw {
			s.raw = append(s.raw, v)
			s.n++
			return
		}
		s.toBuckets()
	}
	s.n++
	s.bucket(v, 1)
}

func (s *sketch) toBuckets() {
	s.bucketed = true
	for _, v := range s.raw {
		s.bucket(v, 1)
	}
	s.raw = nil
}

func (s *sketch) bucket(v float64, c uint64) {
	switch {
	case v > 0:
		s.pos.add(sketchIndex(v), c)
	case v < 0:
		s.neg.add(sketchIndex(-v), c)
	default:
		s.zero += c
	}
}

func (s *sketch) merge(o *sketch) {
	if o.n == 0 {
		return
	}
	if !o.bucketed {
		for _, v := range o.raw {
			s.add(v)
		}
		return
	}
	if !s.bucketed {
		s.toBuckets()
	}
	s.min, s.max = min(s.min, o.min), max(s.max, o.max)
	s.n += o.n
	s.zero += o.zero
	s.pos.merge(&o.pos)
	s.neg.merge(&o.neg)
}

// rankOf is the 0-based rank a q-quantile of n values is: the nearest
// rank, ceil(q·n), the smallest value with at least a q share of the
// values at or below it. So p99 of 3 values is the largest, and p50 of 4
// the second. The tiny slack keeps 0.99·100 from rounding up past 99.
func rankOf(q float64, n uint64) uint64 {
	x := q * float64(n)
	k := math.Ceil(x - x*1e-12)
	switch {
	case k < 1:
		return 0
	case k > float64(n):
		return n - 1
	}
	return uint64(k) - 1
}

// quantile estimates the value of rank rankOf(q, n) of the values added;
// NaN when there are none. The lowest and highest ranks are the exact
// minimum and maximum, and other estimates are clamped to them.
func (s *sketch) quantile(q float64) float64 {
	if s.n == 0 {
		return math.NaN()
	}
	k := rankOf(q, s.n)
	if !s.bucketed {
		slices.Sort(s.raw)
		return s.raw[k]
	}
	switch k {
	case 0:
		return s.min
	case s.n - 1:
		return s.max
	}
	var cum uint64
	var v float64
	found := false
	// Negative values in increasing order are the neg store's buckets
	// from the highest index down.
	for i := len(s.neg.counts) - 1; i >= 0 && !found; i-- {
		cum += uint64(s.neg.counts[i])
		if s.neg.counts[i] != 0 && cum > k {
			v, found = -sketchMid(s.neg.base+i), true
		}
	}
	if !found {
		cum += s.zero
		if s.zero != 0 && cum > k {
			v, found = 0, true
		}
	}
	for i := 0; i < len(s.pos.counts) && !found; i++ {
		cum += uint64(s.pos.counts[i])
		if s.pos.counts[i] != 0 && cum > k {
			v, found = sketchMid(s.pos.base+i), true
		}
	}
	if !found {
		v = s.max
	}
	return min(max(v, s.min), s.max)
}

// The heatmap's buckets are four per power of two: [2^(k/4), 2^((k+1)/4))
// for positive values, their mirror for negative ones, and one for 0.
// Coarser than the sketch, as a chart has a few dozen rows, not
// thousands.
var quarterSteps = [4]float64{1, math.Pow(2, 0.25), math.Pow(2, 0.5), math.Pow(2, 0.75)}

// quarterMant holds the mantissa bits of quarterSteps[1:], which an
// index is found by comparing with.
var quarterMant = [3]uint64{
	math.Float64bits(quarterSteps[1]) & (1<<52 - 1),
	math.Float64bits(quarterSteps[2]) & (1<<52 - 1),
	math.Float64bits(quarterSteps[3]) & (1<<52 - 1),
}

// heatIndex is the bucket of v > 0: 4·floor(log2 v) + the quarter.
func heatIndex(v float64) int {
	b := math.Float64bits(v)
	e := int(b>>52) - 1023
	m := b & (1<<52 - 1)
	q := 0
	if m >= quarterMant[0] {
		q++
	}
	if m >= quarterMant[1] {
		q++
	}
	if m >= quarterMant[2] {
		q++
	}
	return 4*e + q
}

// heatLow is the lower bound of positive bucket idx.
func heatLow(idx int) float64 {
	e, q := idx>>2, idx&3 // floor division, also for negative idx
	return math.Ldexp(quarterSteps[q], e)
}

// hist is a heatmap's counts in one cell.
type hist struct {
	pos, neg store
	zero     uint64
}

func (h *hist) add(v float64) {
	switch {
	case v > 0:
		h.pos.add(heatIndex(v), 1)
	case v < 0:
		h.neg.add(heatIndex(-v), 1)
	default:
		h.zero++
	}
}

func (h *hist) merge(o *hist) {
	h.zero += o.zero
	h.pos.merge(&o.pos)
	h.neg.merge(&o.neg)
}

// Bucket is one row of a heatmap: the values v with Lo <= v < Hi; the
// bucket of zero has Lo = Hi = 0.
type Bucket struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// heatLayout is the buckets a heatmap's result shows: every bucket from
// the lowest to the highest holding a count in any cell, so that every
// group and step shares one y axis.
type heatLayout struct {
	negLo, negHi, posLo, posHi int
	hasNeg, hasZero, hasPos    bool
}

func (l *heatLayout) include(h *hist) {
	if lo, hi, ok := h.neg.bounds(); ok {
		if !l.hasNeg {
			l.negLo, l.negHi, l.hasNeg = lo, hi, true
		} else {
			l.negLo, l.negHi = min(l.negLo, lo), max(l.negHi, hi)
		}
	}
	if h.zero != 0 {
		l.hasZero = true
	}
	if lo, hi, ok := h.pos.bounds(); ok {
		if !l.hasPos {
			l.posLo, l.posHi, l.hasPos = lo, hi, true
		} else {
			l.posLo, l.posHi = min(l.posLo, lo), max(l.posHi, hi)
		}
	}
}

func (l *heatLayout) buckets() []Bucket {
	var out []Bucket
	if l.hasNeg {
		for i := l.negHi; i >= l.negLo; i-- {
			out = append(out, Bucket{Lo: -heatLow(i + 1), Hi: -heatLow(i)})
		}
	}
	if l.hasZero {
		out = append(out, Bucket{})
	}
	if l.hasPos {
		for i := l.posLo; i <= l.posHi; i++ {
			out = append(out, Bucket{Lo: heatLow(i), Hi: heatLow(i + 1)})
		}
	}
	return out
}

// counts lays h out on the layout's buckets; a nil h is all zeros.
func (l *heatLayout) counts(h *hist) []uint64 {
	if h == nil {
		return make([]uint64, l.len())
	}
	out := make([]uint64, 0, l.len())
	if l.hasNeg {
		for i := l.negHi; i >= l.negLo; i-- {
			out = append(out, h.neg.count(i))
		}
	}
	if l.hasZero {
		out = append(out, h.zero)
	}
	if l.hasPos {
		for i := l.posLo; i <= l.posHi; i++ {
			out = append(out, h.pos.count(i))
		}
	}
	return out
}

func (l *heatLayout) len() int {
	n := 0
	if l.hasNeg {
		n += l.negHi - l.negLo + 1
	}
	if l.hasZero {
		n++
	}
	if l.hasPos {
		n += l.posHi - l.posLo + 1
	}
	return n
}
