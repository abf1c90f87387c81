package storage

import (
	"context"
	"errors"
	"fmt"

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

// Append logs payload, as a profiles record, and stores the inputs decoded from it under tenantID.
// When it returns nil, the write survives a crash. An error that wraps
// ErrUnavailable (test it with errors.Is) means the write was not logged,
// nor stored, and may be retried.
func (db *DB) Append(ctx context.Context, tenantID string, payload []byte, inputs []*Input) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := db.tenant(tenantID)
	t.mu.Lock()
	defer t.mu.Unlock()
	// Logging under the tenant lock keeps the log in the order in which
	// profiles were applied, which cumulative deltas depend on.
	if err := db.wal.Log(encodeRecord(recordProfiles, tenantID, payload)); err != nil {
		if errors.Is(err, wal.ErrWrite) || errors.Is(err, wal.ErrClosed) {
			return fmt.Errorf("%w: log write: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("log write: %w", err)
	}
	for _, in := range inputs {
		t.apply(t.head, in)
	}
	if t.head.bytes >= db.opts.MaxHeadBytes {
		select {
		case db.cutSoon <- struct{}{}:
		default:
		}
	}
	t.lastAppend = db.opts.Now()
	db.appends.Add(1)
	return nil
}

// apply stores one input in h, the tenant's head or a scratch head that
// replay uses to rebuild delta state. The caller holds t.mu.
func (t *tenant) apply(h *head, in *Input) {
	p := in.Profile
	im := NewImporter(h.syms)
	stacks := make([]uint32, len(p.Sample))
	sets := make([]uint32, len(p.Sample))
	hasSets := false
	var lbuf []labels.Label
	for i, s := range p.Sample {
		stacks[i] = im.Stack(s.Location)
		if len(s.Label) > 0 || len(s.NumLabel) > 0 {
			lbuf = lbuf[:0]
			for k, vs := range s.Label {
				if len(vs) > 0 {
					lbuf = append(lbuf, labels.Label{Name: k, Value: vs[0]})
				}
			}
			for k, vs := range s.NumLabel {
				if len(vs) > 0 && in.NumericSampleLabel != nil && in.NumericSampleLabel(k) {
					lbuf = append(lbuf, labels.Label{Name: k, Value: fmt.Sprint(vs[0])})
				}
			}
			if len(lbuf) > 0 {
				sets[i] = h.sampleSet(labels.New(lbuf...).List())
				hasSets = true
			}
		}
	}
	if !hasSets {
		sets = nil
	}
	// Samples with the same stack and label set are merged: pprof allows
	// repeats, and a series stores each once per profile. The slots are
	// found once for all sample types.
	type key struct{ stack, set uint32 }
	idx := make(map[key]int32, len(p.Sample))
	slots := make([]int32, len(p.Sample))
	var uniq []key
	for i := range p.Sample {
		k := key{stacks[i], 0}
		if sets != nil {
			k.set = sets[i]
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
		var b labels.Builder
		in.Labels.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
		b.Set(labels.ProfileType, typ.String())
		lbls := b.Labels()
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
