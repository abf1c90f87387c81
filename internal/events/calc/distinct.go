package calc

import (
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// distinct counts distinct values by their 64-bit hashes: exactly, in a
// set, up to DistinctExact of them, and past that with a HyperLogLog
// sketch of 2^hllP registers.
//
// Exact below the threshold means exact up to a collision of two 64-bit
// hashes, which among a few thousand values has a chance near 10^-12.
type distinct struct {
	set []uint64 // open addressing, 0 = empty slot; nil once hll is set
	n   int
	hll []uint8
}

const (
	// DistinctExact is how many distinct values count_distinct counts
	// exactly; past it the count is estimated.
	DistinctExact = 4096
	hllP          = 14
	hllM          = 1 << hllP
	// DistinctRelativeError is the HyperLogLog estimate's standard error
	// relative to the true count, 1.04/√m with m = 2^14 registers.
	DistinctRelativeError = 1.04 / 128
)

func (d *distinct) add(h uint64) {
	if d.hll != nil {
		hllAdd(d.hll, h)
		return
	}
	if h == 0 {
		h = 1 // 0 marks an empty slot
	}
	if 2*(d.n+1) > len(d.set) {
		if d.n+1 > DistinctExact {
			d.toHLL()
			hllAdd(d.hll, h)
			return
		}
		d.rehash(max(16, 2*len(d.set)))
	}
	mask := uint64(len(d.set) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch d.set[i] {
		case h:
			return
		case 0:
			d.set[i] = h
			d.n++
			return
		}
	}
}

func (d *distinct) rehash(size int) {
	old := d.set
	d.set = make([]uint64, size)
	mask := uint64(size - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for d.set[i] != 0 {
			i = (i + 1) & mask
		}
		d.set[i] = h
	}
}

func (d *distinct) toHLL() {
	d.hll = make([]uint8, hllM)
	for _, h := range d.set {
		if h != 0 {
			hllAdd(d.hll, h)
		}
	}
	d.set, d.n = nil, 0
}

func (d *distinct) merge(o *distinct) {
	if o.hll != nil {
		if d.hll == nil {
			d.toHLL()
		}
		for i, r := range o.hll {
			d.hll[i] = max(d.hll[i], r)
		}
		return
	}
	for _, h := range o.set {
		if h != 0 {
			d.add(h)
		}
	}
}

func (d *distinct) estimate() float64 {
	if d.hll == nil {
		return float64(d.n)
	}
	return hllEstimate(d.hll)
}

// hllAdd puts hash h in the registers: the top hllP bits pick the
// register, which keeps the highest position of the first 1 bit of the
// rest.
func hllAdd(reg []uint8, h uint64) {
	i := h >> (64 - hllP)
	w := h << hllP
	r := uint8(bits.LeadingZeros64(w)) + 1
	if r > 64-hllP+1 {
		r = 64 - hllP + 1
	}
	if r > reg[i] {
		reg[i] = r
	}
}

// hllEstimate is Ertl's improved estimator ("New cardinality estimation
// algorithms for HyperLogLog sketches", 2017), which needs neither the
// bias tables of HyperLogLog++ nor a switch to linear counting, and is
// unbiased over the whole range.
func hllEstimate(reg []uint8) float64 {
	const q = 64 - hllP
	var c [q + 2]int
	for _, r := range reg {
		c[r]++
	}
	m := float64(len(reg))
	z := m * hllTau(1-float64(c[q+1])/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * hllSigma(float64(c[0])/m)
	return m * m / (2 * math.Ln2 * z)
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zz := z + x*y
		y += y
		if zz == z {
			return z
		}
		z = zz
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zz := z
		y *= 0.5
		zz -= (1 - x) * (1 - x) * y
		if zz == z {
			return z / 3
		}
		z = zz
	}
}

// hashString and hashNum hash values for counting distinct ones; xxhash
// is deterministic across processes, so that the same query over the
// same events gives the same estimate every time.
func hashString(s string) uint64 { return xxhash.Sum64String(s) }

func hashNum(t uint8, n uint64) uint64 {
	x := n + uint64(t)*0x9e3779b97f4a7c15
	// SplitMix64's finalizer: every input bit moves every output bit.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
