// Package storage keeps profiles: a head in memory per tenant, guarded by a
// write-ahead log, from which queries select series and merge stacks.
//
// Every write is in the log before Append returns, so a client that was told
// its profile arrived finds it again after kill -9 and a restart: Open
// replays the log into the head.
//
// A DB is safe for concurrent use.
package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// Options configure a DB.
type Options struct {
	// Decode turns a logged payload back into the inputs it stood for. It
	// must be deterministic: replay feeds it every payload that Append
	// logged, in order.
	Decode func(payload []byte) ([]*Input, error)
	// WALSync fsyncs the log on every write (power-loss safety, slower).
	WALSync bool
	// WALSegmentBytes is the size of one log segment.
	WALSegmentBytes int64
}

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
}

// DB is an open store.
type DB struct {
	dir    string
	logger *slog.Logger
	opts   Options
	wal    *wal.WAL

	mu      sync.RWMutex
	tenants map[string]*tenant
}

type tenant struct {
	mu    sync.RWMutex
	head  *head
	delta map[uint64]*deltaState
}

// Open opens the store in dir and replays its write-ahead log.
func Open(dir string, logger *slog.Logger, opts Options) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Decode == nil {
		return nil, errors.New("open storage: Options.Decode is required")
	}
	db := &DB{dir: dir, logger: logger, opts: opts, tenants: make(map[string]*tenant)}
	w, err := wal.Open(filepath.Join(dir, "wal"), logger.With("component", "wal"), wal.Options{
		SegmentBytes: opts.WALSegmentBytes, Sync: opts.WALSync,
	})
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	db.wal = w
	n := 0
	err = w.Replay(0, func(rec []byte) error {
		tenantID, payload, err := decodeRecord(rec)
		if err != nil {
			return err
		}
		inputs, err := opts.Decode(payload)
		if err != nil {
			return fmt.Errorf("decode wal record %d: %w", n, err)
		}
		t := db.tenant(tenantID)
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, in := range inputs {
			t.apply(in)
		}
		n++
		return nil
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	logger.Info("wal replayed", "records", n)
	return db, nil
}

// Close closes the log. Data in the head stays in the log for the next Open.
func (db *DB) Close() error {
	return db.wal.Close()
}

func (db *DB) tenant(id string) *tenant {
	db.mu.RLock()
	t := db.tenants[id]
	db.mu.RUnlock()
	if t != nil {
		return t
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if t = db.tenants[id]; t == nil {
		t = &tenant{head: newHead(), delta: make(map[uint64]*deltaState)}
		db.tenants[id] = t
	}
	return t
}

func (db *DB) lookupTenant(id string) *tenant {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.tenants[id]
}

func encodeRecord(tenantID string, payload []byte) []byte {
	b := make([]byte, 0, len(tenantID)+len(payload)+binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(len(tenantID)))
	b = append(b, tenantID...)
	return append(b, payload...)
}

func decodeRecord(rec []byte) (string, []byte, error) {
	n, k := binary.Uvarint(rec)
	if k <= 0 || uint64(len(rec)-k) < n {
		return "", nil, errors.New("malformed wal record header")
	}
	return string(rec[k : k+int(n)]), rec[k+int(n):], nil
}

// Append logs payload and stores the inputs decoded from it under tenantID.
// When it returns nil, the write survives a crash.
func (db *DB) Append(ctx context.Context, tenantID string, payload []byte, inputs []*Input) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := db.tenant(tenantID)
	t.mu.Lock()
	defer t.mu.Unlock()
	// Logging under the tenant lock keeps the log in the order in which
	// profiles were applied, which cumulative deltas depend on.
	if err := db.wal.Log(encodeRecord(tenantID, payload)); err != nil {
		return fmt.Errorf("log write: %w", err)
	}
	for _, in := range inputs {
		t.apply(in)
	}
	return nil
}

// deltaState is the last cumulative profile of one series, keyed by stack
// content hash, so that the next one can be turned into a delta.
type deltaState struct {
	last  map[uint64]int64
	total int64
}

// apply stores one input in the head. The caller holds t.mu.
func (t *tenant) apply(in *Input) {
	h := t.head
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
	for ti, typ := range in.Types {
		if typ.Name == "" || ti >= len(p.SampleType) {
			continue
		}
		var b labels.Builder
		in.Labels.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
		b.Set(labels.ProfileType, typ.String())
		lbls := b.Labels()
		mp := memProfile{ts: p.TimeNanos}
		// Merge samples with the same stack and label set: pprof allows
		// repeats, and a series stores each once per profile.
		type key struct{ stack, set uint32 }
		idx := make(map[key]int, len(p.Sample))
		for i, s := range p.Sample {
			v := s.Value[ti]
			if v == 0 {
				continue
			}
			k := key{stacks[i], 0}
			if sets != nil {
				k.set = sets[i]
			}
			if j, ok := idx[k]; ok {
				mp.values[j] += v
				continue
			}
			idx[k] = len(mp.stacks)
			mp.stacks = append(mp.stacks, k.stack)
			mp.values = append(mp.values, v)
			if sets != nil {
				mp.sets = append(mp.sets, k.set)
			}
		}
		if ti < len(in.Cumulative) && in.Cumulative[ti] {
			t.toDelta(lbls.Hash(), h, &mp)
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

// toDelta replaces cumulative values by their growth since the series' last
// profile. A series' first profile is kept whole: it is what happened since
// the process started. A total lower than the last one means the process
// restarted, and the profile is kept whole as a new baseline.
func (t *tenant) toDelta(series uint64, h *head, mp *memProfile) {
	st := t.delta[series]
	keys := make([]uint64, len(mp.stacks))
	cur := make(map[uint64]int64, len(mp.stacks))
	var total int64
	for i, s := range mp.stacks {
		k := h.syms.StackHash(s)
		if mp.sets != nil && mp.sets[i] != 0 {
			// Label set IDs are per head; their content hash is not.
			k = mix(k, h.sampleSets[mp.sets[i]].Hash())
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
			w++
		}
		mp.stacks, mp.values = mp.stacks[:w], mp.values[:w]
		if mp.sets != nil {
			mp.sets = mp.sets[:w]
		}
	}
	t.delta[series] = &deltaState{last: cur, total: total}
}
