package storage

import "github.com/hearth-profiler/hearth/internal/labels"

// Content hashes that outlive the process: the cumulative-delta state is
// keyed by them and persisted at every head cut, so a restart must compute
// the same keys. This is 64-bit FNV-1a, written out so that its definition
// is here and in docs/storage-format.md rather than in a library.

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fnv64 is an FNV-1a 64 running hash. The zero value is not ready: start
// from newFNV64.
type fnv64 uint64

func newFNV64() fnv64 { return fnvOffset64 }

func (h fnv64) str(s string) fnv64 {
	for i := 0; i < len(s); i++ {
		h ^= fnv64(s[i])
		h *= fnvPrime64
	}
	return h
}

func (h fnv64) byte1(c byte) fnv64 {
	h ^= fnv64(c)
	h *= fnvPrime64
	return h
}

func (h fnv64) u64(v uint64) fnv64 {
	for range 8 {
		h ^= fnv64(byte(v))
		h *= fnvPrime64
		v >>= 8
	}
	return h
}

// labelsKey is a stable hash of a label set: names and values with 0xff
// after each name and 0xfe after each value, in name order.
func labelsKey(ls labels.Labels) uint64 {
	h := newFNV64()
	ls.Range(func(l labels.Label) {
		h = h.str(l.Name).byte1(0xff).str(l.Value).byte1(0xfe)
	})
	return uint64(h)
}

// mix combines two hashes (a splitmix64-style finalizer over a*φ ^ b). It
// is deterministic, so stack hashes built with it are stable across
// processes.
func mix(a, b uint64) uint64 {
	x := a*0x9e3779b97f4a7c15 ^ b
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}
