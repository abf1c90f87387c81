package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// Input is one profile ready to store.
type Input struct {
	// Labels are the series labels, without __profile_type__.
	Labels labels.Labels
	// Profile holds the samples; its TimeNanos is the profile's time.
	Profile *gpprof.Profile
	// Types names the profile type of each sample type of Profile; a zero
	// Type drops that sample type.
	Types []profile.Type
	// Cumulative marks sample types whose values only grow since the
	// process started; they are stored as deltas between profiles.
	Cumulative []bool
	// NumericSampleLabel says which numeric pprof labels are kept per
	// sample, as strings. String labels are all kept.
	NumericSampleLabel func(key string) bool
	// DropFirst stores nothing for a cumulative series without a previous
	// profile; its values only become the baseline of the next one.
	DropFirst bool
}

// ErrUnavailable is wrapped by the error of an Append that could not log its
// write: the disk is full or failing (wal.ErrWrite, also wrapped), or the
// store is closed (wal.ErrClosed). Nothing was stored, the log is as it was,
// and the same write may succeed later: an HTTP server answers it with 503.
var ErrUnavailable = errors.New("storage unavailable")

// ErrBehind is wrapped, with ErrUnavailable, by the error of an append
// to a tenant whose head holds twice Options.MaxHeadBytes: the head is
// cut at MaxHeadBytes, so its blocks are being written slower than writes
// arrive (or a long compaction holds the cut back), and taking more would
// let memory grow without bound. The client is told to retry; writes are
// taken again once the head is cut.
var ErrBehind = errors.New("storage is behind: the tenant's data in memory is at twice its limit and waits to be written to a block")

// behind refuses an append to t when its head is at twice the limit. The
// caller holds t.mu.
func (db *DB) behind(t *tenant) error {
	if t.head.memBytes() >= 2*db.opts.MaxHeadBytes {
		db.behindRefusals.Add(1)
		select {
		case db.cutSoon <- struct{}{}:
		default:
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrBehind)
	}
	return nil
}

// SeriesLimitError refuses inputs that would add series to a tenant's head
// past its limit (AppendLimited). Nothing of them was logged or stored; the
// same inputs are taken once the head is cut into a block (it then starts
// empty) or the limit is raised.
type SeriesLimitError struct {
	// Limit is the most series the head may hold, Series those it holds,
	// and New those the refused inputs would have added.
	Limit, Series, New int
}

func (e *SeriesLimitError) Error() string {
	return fmt.Sprintf("the tenant's head holds %d series, and this profile would add %d, past the limit of %d series", e.Series, e.New, e.Limit)
}

// Append logs payload, as a profiles record, and stores the inputs decoded from it under tenantID.
// When it returns nil, the write survives a crash. An error that wraps
// ErrUnavailable (test it with errors.Is) means the write was not logged,
// nor stored, and may be retried.
func (db *DB) Append(ctx context.Context, tenantID string, payload []byte, inputs []*Input) error {
	_, err := db.AppendLimited(ctx, tenantID, payload, [][]*Input{inputs}, 0, nil)
	return err
}

// AppendLimited is Append of groups of inputs, each what one request
// decoded to, under a limit of maxSeries series in the tenant's head (0:
// none). A group that would add series past it, counting those that the
// groups before it add, is refused whole: refused[i] is then a
// *SeriesLimitError, and the group is neither logged nor stored, while
// the others are. When some group is refused, the record logged is
// encode(admitted) instead of payload: the payload of the admitted groups
// alone, so that replay stores what was stored. When all are refused,
// nothing is logged. The count and the append happen under the tenant's
// lock, so that concurrent appends cannot pass the limit together.
// refused is nil when every group was stored; err is as Append's.
func (db *DB) AppendLimited(ctx context.Context, tenantID string, payload []byte, groups [][]*Input, maxSeries int, encode func(admitted []bool) []byte) (refused []error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	t := db.tenant(tenantID)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := db.behind(t); err != nil {
		return nil, err
	}
	refused = t.admit(groups, maxSeries)
	if refused != nil {
		admitted := make([]bool, len(groups))
		some := false
		for i, e := range refused {
			admitted[i] = e == nil
			some = some || admitted[i]
		}
		if !some {
			return refused, nil
		}
		payload = encode(admitted)
	}
	// Logging under the tenant lock keeps the log in the order in which
	// profiles were applied, which cumulative deltas depend on.
	if err := db.wal.Log(encodeRecord(recordProfiles, tenantID, payload)); err != nil {
		if errors.Is(err, wal.ErrWrite) || errors.Is(err, wal.ErrClosed) {
			return nil, fmt.Errorf("%w: log write: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("log write: %w", err)
	}
	for i, g := range groups {
		if refused != nil && refused[i] != nil {
			continue
		}
		for _, in := range g {
			t.apply(t.head, in)
		}
	}
	if t.head.bytes >= db.opts.MaxHeadBytes {
		select {
		case db.cutSoon <- struct{}{}:
		default:
		}
	}
	t.lastAppend = db.opts.Now()
	db.appends.Add(1)
	return refused, nil
}

// admit says which groups of inputs the head can take under a limit of
// maxSeries series: nil when all, else the refusal of each group that it
// cannot take (nil for those it can). The caller holds t.mu.
func (t *tenant) admit(groups [][]*Input, maxSeries int) []error {
	if maxSeries <= 0 {
		return nil
	}
	h := t.head
	// Most appends are far from the limit: the sample types of the
	// inputs bound the series they can add, and then nothing is counted.
	most := 0
	for _, g := range groups {
		for _, in := range g {
			most += len(in.Types)
		}
	}
	if len(h.all)+most <= maxSeries {
		return nil
	}
	var refused []error
	added := map[uint64][]labels.Labels{} // by the groups admitted
	n := 0
	for gi, g := range groups {
		var mine []labels.Labels
		for _, in := range g {
			for ti, typ := range in.Types {
				if typ.Name == "" || ti >= len(in.Profile.SampleType) {
					continue
				}
				lbls := seriesLabels(in.Labels, typ)
				if h.lookup(lbls) != nil || inSet(added, lbls) || slices.ContainsFunc(mine, lbls.Equal) {
					continue
				}
				cumulative := ti < len(in.Cumulative) && in.Cumulative[ti]
				if cumulative && in.DropFirst && t.delta[labelsKey(lbls)] == nil {
					continue // only sets the baseline (see apply)
				}
				mine = append(mine, lbls)
			}
		}
		if len(h.all)+n+len(mine) > maxSeries {
			if refused == nil {
				refused = make([]error, len(groups))
			}
			refused[gi] = &SeriesLimitError{Limit: maxSeries, Series: len(h.all) + n, New: len(mine)}
			continue
		}
		n += len(mine)
		for _, ls := range mine {
			addSeries(added, ls)
		}
	}
	return refused
}

func inSet(set map[uint64][]labels.Labels, ls labels.Labels) bool {
	return slices.ContainsFunc(set[ls.Hash()], ls.Equal)
}

// seriesLabels are the labels of the series that the sample type typ of an
// input with labels ls is stored in.
func seriesLabels(ls labels.Labels, typ profile.Type) labels.Labels {
	var b labels.Builder
	ls.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	b.Set(labels.ProfileType, typ.String())
	return b.Labels()
}

// apply stores one input in h, the tenant's head or a scratch head that
// replay uses to rebuild delta state. The caller holds t.mu.
func (t *tenant) apply(h *head, in *Input) {
	p := in.Profile
	im := NewImporter(h.syms)
	stacks := make([]uint32, len(p.Sample))
	sets := make([]uint32, len(p.Sample))
	spans := make([]uint32, len(p.Sample))
	hasSets, hasSpans := false, false
	var lbuf []labels.Label
	for i, s := range p.Sample {
		stacks[i] = im.Stack(s.Location)
		if len(s.Label) == 0 && len(s.NumLabel) == 0 {
			continue
		}
		ref := spanRefOf(s.Label, s.NumLabel)
		if ref != (SpanRef{}) {
			spans[i] = h.internSpan(ref)
			hasSpans = true
		}
		lbuf = lbuf[:0]
		for k, vs := range s.Label {
			if len(vs) > 0 && !ref.takes(k, vs[0]) {
				lbuf = append(lbuf, labels.Label{Name: k, Value: vs[0]})
			}
		}
		for k, vs := range s.NumLabel {
			if len(vs) > 0 && !ref.takesNum(k, vs[0]) && in.NumericSampleLabel != nil && in.NumericSampleLabel(k) {
				lbuf = append(lbuf, labels.Label{Name: k, Value: fmt.Sprint(vs[0])})
			}
		}
		if len(lbuf) > 0 {
			sets[i] = h.sampleSet(labels.New(lbuf...).List())
			hasSets = true
		}
	}
	if !hasSets {
		sets = nil
	}
	if !hasSpans {
		spans = nil
	}
	// Samples with the same stack, label set and span are merged: pprof
	// allows repeats, and a series stores each once per profile. The
	// slots are found once for all sample types.
	type key struct{ stack, set, span uint32 }
	idx := make(map[key]int32, len(p.Sample))
	slots := make([]int32, len(p.Sample))
	var uniq []key
	for i := range p.Sample {
		k := key{stack: stacks[i]}
		if sets != nil {
			k.set = sets[i]
		}
		if spans != nil {
			k.span = spans[i]
		}
		j, ok := idx[k]
		if !ok {
			j = int32(len(uniq))
			idx[k] = j
			uniq = append(uniq, k)
		}
		slots[i] = j
	}
	slotVals := make([]int64, len(uniq))
	for ti, typ := range in.Types {
		if typ.Name == "" || ti >= len(p.SampleType) {
			continue
		}
		lbls := seriesLabels(in.Labels, typ)
		mp := memProfile{ts: p.TimeNanos}
		n := 0
		for i, s := range p.Sample {
			slotVals[slots[i]] += s.Value[ti]
		}
		for _, v := range slotVals {
			if v != 0 {
				n++
			}
		}
		// Exact sizes: the head holds these for up to a block's span, and
		// append's spare capacity would double its memory.
		mp.stacks = make([]uint32, 0, n)
		mp.values = make([]int64, 0, n)
		if sets != nil {
			mp.sets = make([]uint32, 0, n)
		}
		if spans != nil {
			mp.spans = make([]uint32, 0, n)
		}
		for j, v := range slotVals {
			if v == 0 {
				continue
			}
			slotVals[j] = 0
			mp.stacks = append(mp.stacks, uniq[j].stack)
			mp.values = append(mp.values, v)
			if sets != nil {
				mp.sets = append(mp.sets, uniq[j].set)
			}
			if spans != nil {
				mp.spans = append(mp.spans, uniq[j].span)
			}
		}
		if ti < len(in.Cumulative) && in.Cumulative[ti] {
			if first := t.toDelta(labelsKey(lbls), h, &mp); first && in.DropFirst {
				continue
			}
		}
		for _, v := range mp.values {
			mp.total += v
		}
		if len(mp.stacks) == 0 {
			// Keep an empty profile: it says the series was there and
			// idle, which a time series shows as zero.
			mp.stacks, mp.values = nil, nil
		}
		h.append(h.getOrCreate(lbls), mp)
	}
}
