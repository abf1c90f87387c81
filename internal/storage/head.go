package storage

import (
	"maps"
	"strings"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// head holds one tenant's recent profiles in memory, appended to in place
// and queried while they arrive. It has its own symbol tables; when the head
// is cut into a block, they go with it and a new head starts empty.
type head struct {
	syms   *Symbols
	series map[uint64][]*memSeries
	all    []*memSeries

	// sampleSets are the distinct per-sample label sets; ID 0 is the empty set.
	sampleSets   []labels.Labels
	sampleSetIdx map[string]uint32
	sampleNames  map[string]struct{} // names used in sampleSets and span labels
	// spans are the requests that samples were taken in.
	spans       spanTable
	seriesNames map[string]struct{} // names used in series labels

	minT, maxT int64 // unix nanoseconds, over all profiles
	samples    int64 // rows appended, to decide when to cut
	bytes      int64 // rough memory held by samples

	// ev holds the tenant's events of the same stretch of the log.
	ev *eventHead
}

// empty says whether h holds neither profiles nor events.
func (h *head) empty() bool { return len(h.all) == 0 && h.ev.len() == 0 }

// memBytes is the rough memory h holds, profiles and events.
func (h *head) memBytes() int64 { return h.bytes + h.ev.bytes }

// span is the time between the oldest and the newest thing in h.
func (h *head) span() int64 {
	lo, hi := h.minT, h.maxT
	if h.ev.len() > 0 {
		lo, hi = min(lo, h.ev.minT), max(hi, h.ev.maxT)
	}
	return hi - lo
}

// memSeries is one series in the head: a label set including
// __profile_type__ and the profiles appended to it.
type memSeries struct {
	id         uint32
	lbls       labels.Labels
	profiles   []memProfile
	minT, maxT int64
}

// memProfile is one profile of one series: its samples as parallel slices.
type memProfile struct {
	ts     int64 // unix nanoseconds
	total  int64
	stacks []uint32
	values []int64
	sets   []uint32 // per-sample label set IDs; nil when every sample has none
	spans  []uint32 // per-sample span IDs; nil when every sample has none
}

func newHead() *head {
	return &head{
		syms:         NewSymbols(),
		series:       make(map[uint64][]*memSeries),
		sampleSets:   []labels.Labels{{}},
		sampleSetIdx: map[string]uint32{"": 0},
		spans:        newSpanTable(),
		sampleNames:  map[string]struct{}{},
		seriesNames:  map[string]struct{}{},
		minT:         1<<63 - 1,
		maxT:         -1 << 63,
		ev:           newEventHead(),
	}
}

// view returns a copy of the head as it is now, for a query to read
// without the tenant's lock: appends only add to the slices and tables it
// shares with the head (the samples of a profile, the profiles of a
// series, the symbols, the label sets) and never change what is there, so
// the copy stays valid, and unchanged, while writes go on. The maps that
// appends do change are copied. The caller holds the tenant's read lock.
func (h *head) view() *head {
	v := &head{
		syms:        h.syms.snapshot(),
		all:         make([]*memSeries, len(h.all)),
		sampleSets:  h.sampleSets[:len(h.sampleSets):len(h.sampleSets)],
		spans:       spanTable{refs: h.spans.refs[:len(h.spans.refs):len(h.spans.refs)]},
		sampleNames: maps.Clone(h.sampleNames),
		seriesNames: maps.Clone(h.seriesNames),
		minT:        h.minT,
		maxT:        h.maxT,
		samples:     h.samples,
		bytes:       h.bytes,
		ev:          h.ev.view(),
	}
	series := make([]memSeries, len(h.all))
	for i, s := range h.all {
		series[i] = memSeries{id: s.id, lbls: s.lbls, profiles: s.profiles[:len(s.profiles):len(s.profiles)], minT: s.minT, maxT: s.maxT}
		v.all[i] = &series[i]
	}
	return v
}

// lookup returns the series of lbls, nil when the head has none.
func (h *head) lookup(lbls labels.Labels) *memSeries {
	for _, s := range h.series[lbls.Hash()] {
		if s.lbls.Equal(lbls) {
			return s
		}
	}
	return nil
}

func (h *head) getOrCreate(lbls labels.Labels) *memSeries {
	if s := h.lookup(lbls); s != nil {
		return s
	}
	hash := lbls.Hash()
	s := &memSeries{id: uint32(len(h.all)), lbls: lbls, minT: 1<<63 - 1, maxT: -1 << 63}
	lbls.Range(func(l labels.Label) { h.seriesNames[l.Name] = struct{}{} })
	h.series[hash] = append(h.series[hash], s)
	h.all = append(h.all, s)
	return s
}

// sampleSet interns a per-sample label set given as sorted name/value pairs.
func (h *head) sampleSet(ls []labels.Label) uint32 {
	if len(ls) == 0 {
		return 0
	}
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
		b.WriteByte(0)
	}
	k := b.String()
	if id, ok := h.sampleSetIdx[k]; ok {
		return id
	}
	id := uint32(len(h.sampleSets))
	h.sampleSets = append(h.sampleSets, labels.New(ls...))
	for _, l := range ls {
		h.sampleNames[l.Name] = struct{}{}
	}
	h.sampleSetIdx[k] = id
	return id
}

// internSpan interns the request a sample was taken in.
func (h *head) internSpan(r SpanRef) uint32 {
	id, added := h.spans.intern(r)
	if added {
		spanNames(r, h.sampleNames)
		// The entry, and its slot in the index.
		h.bytes += 32 + 64
	}
	return id
}

func (h *head) append(s *memSeries, p memProfile) {
	s.profiles = append(s.profiles, p)
	s.minT = min(s.minT, p.ts)
	s.maxT = max(s.maxT, p.ts)
	h.minT = min(h.minT, p.ts)
	h.maxT = max(h.maxT, p.ts)
	h.samples += int64(len(p.stacks))
	h.bytes += int64(len(p.stacks))*12 + int64(len(p.sets)+len(p.spans))*4 + 64
}
