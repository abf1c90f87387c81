package calc

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactQuantile is the nearest-rank q-quantile of the sorted values: the
// smallest value with at least a q share of them at or below it.
func exactQuantile(sorted []float64, q float64) float64 {
	for i, v := range sorted {
		if float64(i+1) >= q*float64(len(sorted))-1e-9 {
			return v
		}
	}
	return sorted[len(sorted)-1]
}

func TestRankOf(t *testing.T) {
	for _, tt := range []struct {
		q    float64
		n, k uint64
	}{
		{0.99, 3, 2}, {0.5, 4, 1}, {0.5, 5, 2}, {0.99, 100, 98}, {0.99, 1000, 989}, {0.999, 1000, 998},
		{0, 10, 0}, {1, 10, 9}, {0.01, 1, 0}, {0.95, 20, 18}, {0.75, 4, 2},
	} {
		if got := rankOf(tt.q, tt.n); got != tt.k {
			t.Errorf("rankOf(%v, %d) = %d, want %d", tt.q, tt.n, got, tt.k)
		}
	}
}

func TestSketchAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		// Durations: log-normal around 20 ms, in whole nanoseconds.
		"lognormal": func() float64 { return math.Round(math.Exp(rng.NormFloat64()*1.5 + math.Log(20e6))) },
		"uniform":   func() float64 { return rng.Float64() * 1000 },
		"small":     func() float64 { return float64(rng.IntN(5)) },
		"mixed":     func() float64 { return rng.NormFloat64() * 100 },
		// 18 decades, 60 octaves: nearly all a store holds unfolded.
		"wide": func() float64 { return math.Pow(10, rng.Float64()*18-9) },
	}
	qs := []float64{0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1}
	for name, gen := range dists {
		for _, n := range []int{1, 2, 7, 100, 10000, 200000} {
			sk := newSketch()
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = gen()
				sk.add(vals[i])
			}
			slices.Sort(vals)
			for _, q := range qs {
				want, got := exactQuantile(vals, q), sk.quantile(q)
				if math.Abs(got-want) > SketchRelativeError*math.Abs(want)*(1+1e-12) {
					t.Errorf("%s n=%d q=%v: got %v, exact %v: off by %.3g%%, more than %.3g%%",
						name, n, q, got, want, 100*math.Abs(got-want)/math.Abs(want), 100*SketchRelativeError)
				}
			}
		}
	}
	empty := newSketch()
	if !math.IsNaN(empty.quantile(0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
}

func TestSketchMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	all := newSketch()
	parts := []*sketch{newSketch(), newSketch(), newSketch(), newSketch(), newSketch()}
	var vals []float64
	for i := range 50000 {
		v := math.Exp(rng.NormFloat64()*2) * float64(1+i%5*1000)
		vals = append(vals, v)
		parts[i%5].add(v)
		all.add(v)
	}
	m := newSketch()
	for _, p := range parts {
		m.merge(p)
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
		if m.quantile(q) != all.quantile(q) {
			t.Errorf("q=%v: merged %v, one sketch %v", q, m.quantile(q), all.quantile(q))
		}
		want := exactQuantile(vals, q)
		if got := m.quantile(q); math.Abs(got-want) > SketchRelativeError*want {
			t.Errorf("q=%v: merged %v, exact %v", q, got, want)
		}
	}
	if m.n != all.n || m.min != all.min || m.max != all.max {
		t.Errorf("merged n/min/max %d %v %v, want %d %v %v", m.n, m.min, m.max, all.n, all.min, all.max)
	}
}

func TestStoreFoldsBeyondMaxBuckets(t *testing.T) {
	s := newSketch()
	// 1e-300 and 1e300 are ~2000 octaves apart: the store must fold the
	// low end rather than hold 128k buckets, and keep the high end's
	// accuracy.
	var vals []float64
	for _, v := range []float64{1e-300, 1e-200, 1, 2, 3, 1e290, 1e300, 2e300, 3e300, 4e300} {
		for range 10 { // past the values a sketch keeps as they are
			vals = append(vals, v)
			s.add(v)
		}
	}
	if len(s.pos.counts) > maxBuckets {
		t.Fatalf("store holds %d buckets, more than %d", len(s.pos.counts), maxBuckets)
	}
	var total uint64
	for _, c := range s.pos.counts {
		total += uint64(c)
	}
	if total != uint64(len(vals)) {
		t.Errorf("store counts %d values, want %d", total, len(vals))
	}
	if s.quantile(0) != 1e-300 || s.quantile(1) != 4e300 {
		t.Errorf("min/max %v %v", s.quantile(0), s.quantile(1))
	}
	for _, q := range []float64{0.7, 0.8, 0.9} {
		want := exactQuantile(vals, q)
		if got := s.quantile(q); math.Abs(got-want) > want*SketchRelativeError {
			t.Errorf("q=%v: %v, want %v", q, got, want)
		}
	}
}

func TestHeatBuckets(t *testing.T) {
	for _, tt := range []struct {
		v     float64
		index int
	}{
		{1, 0}, {1.18, 0}, {1.19, 1}, {1.41, 1}, {1.42, 2}, {1.68, 2}, {1.69, 3}, {1.99, 3}, {2, 4},
		{0.5, -4}, {0.99, -1}, {1024, 40}, {1e9, 119},
	} {
		if got := heatIndex(tt.v); got != tt.index {
			t.Errorf("heatIndex(%v) = %d, want %d", tt.v, got, tt.index)
		}
		i := heatIndex(tt.v)
		if lo, hi := heatLow(i), heatLow(i+1); tt.v < lo || tt.v >= hi {
			t.Errorf("%v is outside its bucket [%v, %v)", tt.v, lo, hi)
		}
	}
	// Every bound is 2^(1/4) times the one below it.
	for i := -20; i < 20; i++ {
		if r := heatLow(i+1) / heatLow(i); math.Abs(r-math.Pow(2, 0.25)) > 1e-12 {
			t.Errorf("bucket %d: ratio %v", i, r)
		}
	}
}

func TestHeatLayout(t *testing.T) {
	var a, b hist
	for _, v := range []float64{-3, 0, 0, 1, 1.5} {
		a.add(v)
	}
	b.add(5)
	var l heatLayout
	l.include(&a)
	l.include(&b)
	bk := l.buckets()
	for i := 1; i < len(bk); i++ {
		if bk[i].Lo < bk[i-1].Hi-1e-12 || bk[i].Lo < bk[i-1].Lo {
			t.Errorf("buckets out of order at %d: %v", i, bk)
		}
	}
	ca, cb := l.counts(&a), l.counts(&b)
	if len(ca) != len(bk) || len(cb) != len(bk) {
		t.Fatalf("counts of %d and %d for %d buckets", len(ca), len(cb), len(bk))
	}
	place := func(counts []uint64) map[float64]uint64 {
		m := map[float64]uint64{}
		for i, c := range counts {
			if c != 0 {
				m[bk[i].Lo] += c
			}
		}
		return m
	}
	// -3 is in (-2^(7/4), -2^(6/4)]: its bucket's lo is -2^(7/4).
	wantA := map[float64]uint64{-math.Pow(2, 1.75): 1, 0: 2, 1: 1, math.Pow(2, 0.5): 1}
	if got := place(ca); !mapsEqual(got, wantA) {
		t.Errorf("a placed as %v, want %v", got, wantA)
	}
	// 5 is in [2^(9/4), 2^(10/4)).
	if got := place(cb); !mapsEqual(got, map[float64]uint64{math.Pow(2, 2.25): 1}) {
		t.Errorf("b placed as %v", got)
	}
}

func mapsEqual(a, b map[float64]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		found := false
		for k2, v2 := range b {
			if math.Abs(k-k2) <= 1e-12*math.Abs(k) && v == v2 {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestDistinct(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 10, 1000, DistinctExact, DistinctExact + 1, 10000, 100000, 1000000} {
		var d distinct
		for i := range n {
			h := hashNum(1, uint64(i))
			d.add(h)
			if rng.IntN(3) == 0 {
				d.add(h) // repeats do not count
			}
		}
		got := d.estimate()
		if n <= DistinctExact {
			if got != float64(n) {
				t.Errorf("n=%d: counted %v, want exactly %d", n, got, n)
			}
			continue
		}
		// 4 standard errors: a seeded test that still means something.
		if e := math.Abs(got-float64(n)) / float64(n); e > 4*DistinctRelativeError {
			t.Errorf("n=%d: estimated %v, off by %.2f%%, more than 4×%.2f%%", n, got, 100*e, 100*DistinctRelativeError)
		}
	}
}

func TestDistinctErrorOverManyRuns(t *testing.T) {
	// The estimator's error, over many sets, stays near its stated
	// standard error and shows no bias.
	const runs, n = 40, 50000
	var sum, sumSq float64
	for r := range runs {
		var d distinct
		for i := range n {
			d.add(hashString(string(rune(r)) + "/" + string(rune(i))))
		}
		e := (d.estimate() - n) / n
		sum += e
		sumSq += e * e
	}
	mean, rms := sum/runs, math.Sqrt(sumSq/runs)
	if math.Abs(mean) > 2*DistinctRelativeError || rms > 2*DistinctRelativeError {
		t.Errorf("mean error %.3f%%, rms %.3f%%; stated standard error %.3f%%", 100*mean, 100*rms, 100*DistinctRelativeError)
	}
}

func TestDistinctMerge(t *testing.T) {
	var a, b, all distinct
	for i := range 3000 {
		h := hashNum(1, uint64(i))
		a.add(h)
		all.add(h)
	}
	for i := 2000; i < 9000; i++ {
		h := hashNum(1, uint64(i))
		b.add(h)
		all.add(h)
	}
	// exact + exact staying exact
	var small distinct
	small.merge(&a)
	if small.estimate() != 3000 {
		t.Errorf("exact merge: %v", small.estimate())
	}
	// exact + HLL
	a.merge(&b)
	if a.estimate() != all.estimate() {
		t.Errorf("merged %v, one set %v", a.estimate(), all.estimate())
	}
	if e := math.Abs(a.estimate()-9000) / 9000; e > 4*DistinctRelativeError {
		t.Errorf("merged estimate %v of 9000", a.estimate())
	}
}

func TestStoreSaturates(t *testing.T) {
	var s store
	s.add(5, math.MaxUint32-1)
	s.add(5, 3)
	s.add(5, 1)
	if got := s.count(5); got != math.MaxUint32 {
		t.Errorf("count %d, want it held at %d", got, uint64(math.MaxUint32))
	}
	var m store
	m.add(5, 10)
	m.merge(&s)
	if got := m.count(5); got != math.MaxUint32 {
		t.Errorf("merged count %d", got)
	}
}
