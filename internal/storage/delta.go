package storage

import "encoding/binary"

// deltaState is the last cumulative profile of one series, keyed by stack
// content hash, so that the next one can be turned into a delta. It is
// never changed once stored in tenant.delta (toDelta stores a new one), so
// a shallow copy of the map is a snapshot.
type deltaState struct {
	last  map[uint64]int64
	total int64
}

// toDelta replaces cumulative values by their growth since the series' last
// profile. A series' first profile is kept whole: it is what happened since
// the process started. A total lower than the last one means the process
// restarted, and the profile is kept whole as a new baseline. It says
// whether the series had no previous profile.
func (t *tenant) toDelta(series uint64, h *head, mp *memProfile) (first bool) {
	st := t.delta[series]
	keys := make([]uint64, len(mp.stacks))
	cur := make(map[uint64]int64, len(mp.stacks))
	var total int64
	for i, s := range mp.stacks {
		k := h.syms.StackHash(s)
		if mp.sets != nil && mp.sets[i] != 0 {
			// Label set IDs are per head; their content hash is not.
			k = mix(k, labelsKey(h.sampleSets[mp.sets[i]]))
		}
		if mp.spans != nil && mp.spans[i] != 0 {
			r := h.spans.refs[mp.spans[i]]
			k = mix(mix(mix(mix(k, r.Span), r.Root), binary.LittleEndian.Uint64(r.Trace[:8])), binary.LittleEndian.Uint64(r.Trace[8:]))
		}
		keys[i] = k
		cur[k] += mp.values[i]
		total += mp.values[i]
	}
	if st != nil && total >= st.total {
		w := 0
		for i := range mp.stacks {
			d := mp.values[i] - st.last[keys[i]]
			if d <= 0 {
				continue
			}
			mp.stacks[w], mp.values[w] = mp.stacks[i], d
			if mp.sets != nil {
				mp.sets[w] = mp.sets[i]
			}
			if mp.spans != nil {
				mp.spans[w] = mp.spans[i]
			}
			w++
		}
		mp.stacks, mp.values = mp.stacks[:w], mp.values[:w]
		if mp.sets != nil {
			mp.sets = mp.sets[:w]
		}
		if mp.spans != nil {
			mp.spans = mp.spans[:w]
		}
	}
	t.delta[series] = &deltaState{last: cur, total: total}
	return st == nil
}
