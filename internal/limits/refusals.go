package limits

import (
	"cmp"
	"slices"
	"sync"
)

// Refusals counts the requests and profiles refused by a limit, by tenant
// and limit, for hearth_limits_refused_total. A nil *Refusals counts
// nothing. It is safe for concurrent use.
type Refusals struct {
	mu sync.Mutex
	n  map[refusalKey]uint64
}

type refusalKey struct{ tenant, limit string }

// Refusal is one count of Refusals.
type Refusal struct {
	Tenant, Limit string
	Count         uint64
}

// Add counts one refusal of tenant by the limit called limit.
func (r *Refusals) Add(tenant, limit string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.n == nil {
		r.n = make(map[refusalKey]uint64)
	}
	r.n[refusalKey{tenant, limit}]++
	r.mu.Unlock()
}

// All returns the counts, sorted by tenant then limit.
func (r *Refusals) All() []Refusal {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	out := make([]Refusal, 0, len(r.n))
	for k, v := range r.n {
		out = append(out, Refusal{k.tenant, k.limit, v})
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Refusal) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Limit, b.Limit))
	})
	return out
}

// Count returns the refusals of tenant by the limit called limit.
func (r *Refusals) Count(tenant, limit string) uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[refusalKey{tenant, limit}]
}
