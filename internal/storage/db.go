// Package storage keeps profiles: per tenant a head in memory guarded by a
// write-ahead log, cut by time and size into immutable blocks on disk,
// which a compactor merges into bigger ones and retention deletes.
//
// Every write is in the log before Append returns, so a client that was told
// its profile arrived finds it again after kill -9 and a restart: Open
// replays the log into the head. When a head is cut, its block is written
// to a temporary directory, synced and renamed into place; only then is the
// log truncated. Queries fan out to the head, heads being written out, and
// the blocks that overlap their time range. docs/storage-format.md
// describes the files and the crash-safety protocol.
//
//	db, err := storage.Open(dir, logger, opts)
//	go db.Run(ctx) // cuts, compaction, retention
//	...
//	db.Flush(ctx)  // optional: write every head out before closing
//	db.Close()
//
// A DB is safe for concurrent use.
package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// Options configure a DB. Zero durations and sizes take the defaults of
// DefaultOptions, except Retention, where zero keeps data forever.
type Options struct {
	// Decode turns a logged payload back into the inputs it stood for. It
	// must be deterministic: replay feeds it every payload that Append
	// logged, in order.
	Decode func(payload []byte) ([]*Input, error)
	// WALSync fsyncs the log on every write (power-loss safety, slower).
	WALSync bool
	// WALSegmentBytes is the size of one log segment.
	WALSegmentBytes int64

	// BlockDuration is the span of profile time after which a head is cut
	// into a block; a head that has had no writes for this long (wall
	// time) is cut too. Default 1h.
	BlockDuration time.Duration
	// MaxHeadBytes is the estimated sample memory of one tenant's head
	// after which it is cut. Default 256 MiB.
	MaxHeadBytes int64
	// CheckInterval is how often Run looks for heads to cut. Default 10s.
	CheckInterval time.Duration
	// CompactInterval is how often Run compacts and applies retention.
	// Default 1m.
	CompactInterval time.Duration
	// CompactionRanges are the block spans compaction builds, smallest
	// first: blocks shorter than a range whose aligned window of that
	// range is over are merged. Nil means 6h, 24h; an empty slice turns
	// compaction off.
	CompactionRanges []time.Duration
	// Retention deletes blocks whose newest profile is older than now
	// minus Retention. Zero keeps everything. DefaultOptions: 30 days.
	Retention time.Duration
	// Now is the wall clock, for tests; nil means time.Now.
	Now func() time.Time
}

// DefaultOptions returns the options of a plain server, without Decode.
func DefaultOptions() Options {
	return Options{
		BlockDuration:    time.Hour,
		MaxHeadBytes:     128 << 20,
		CheckInterval:    10 * time.Second,
		CompactInterval:  time.Minute,
		CompactionRanges: []time.Duration{6 * time.Hour, 24 * time.Hour},
		Retention:        30 * 24 * time.Hour,
	}
}

func (o *Options) setDefaults() {
	d := DefaultOptions()
	if o.BlockDuration <= 0 {
		o.BlockDuration = d.BlockDuration
	}
	if o.MaxHeadBytes <= 0 {
		o.MaxHeadBytes = d.MaxHeadBytes
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = d.CheckInterval
	}
	if o.CompactInterval <= 0 {
		o.CompactInterval = d.CompactInterval
	}
	if o.CompactionRanges == nil {
		o.CompactionRanges = d.CompactionRanges
	}
	if o.Now == nil {
		o.Now = time.Now
	}
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
	// DropFirst stores nothing for a cumulative series without a previous
	// profile; its values only become the baseline of the next one.
	DropFirst bool
}

// DB is an open store.
type DB struct {
	dir    string
	logger *slog.Logger
	opts   Options
	wal    *wal.WAL
	ids    idGenerator

	mu      sync.RWMutex
	tenants map[string]*tenant

	// maintMu serializes cuts, compaction, retention and Close.
	maintMu sync.Mutex
	closed  bool
	// lastCut is the log segment the last cut started; every record of a
	// tenant whose head is empty is below it and in a block.
	lastCut int
	// cutSoon wakes Run when a head outgrows MaxHeadBytes between ticks,
	// so that memory stays near the limit under a fast stream of writes.
	cutSoon chan struct{}
	// appends counts Append calls, for Run to see when writes pause.
	appends atomic.Int64
	// cutFailures and compactFailures count failed runs of Run's work.
	cutFailures, compactFailures atomic.Int64
}

// tenant is one tenant's data. Lock order: blocksMu, then mu.
type tenant struct {
	id  string
	dir string // DIR/tenants/<escaped id>

	mu         sync.RWMutex
	head       *head
	frozen     []*frozenHead // cut, block not yet written; oldest first
	delta      map[uint64]*deltaState
	lastAppend time.Time // wall time of the last Append

	// blocksMu guards blocks. Queries hold it for reading while they run,
	// so a block is only closed when no query reads it.
	blocksMu sync.RWMutex
	blocks   []*block // sorted by minT

	// cpSegment is the log segment of the tenant's checkpoint file: its
	// records below it are in blocks. Guarded by DB.maintMu.
	cpSegment int
}

// frozenHead is a head that was cut and waits for its block: it stays
// queryable until the block is open.
type frozenHead struct {
	head       *head
	walSegment int                    // the log segment the cut started
	delta      map[uint64]*deltaState // the delta state at the cut
}

func newTenant(dir, id string) *tenant {
	return &tenant{id: id, dir: filepath.Join(dir, "tenants", tenantDirName(id)),
		head: newHead(), delta: make(map[uint64]*deltaState)}
}

func (t *tenant) blocksDir() string { return filepath.Join(t.dir, "blocks") }

// Open opens the store in dir: it cleans up what a crash left behind, opens
// the blocks, loads each tenant's checkpoint and replays the write-ahead
// log from there.
func Open(dir string, logger *slog.Logger, opts Options) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Decode == nil {
		return nil, errors.New("open storage: Options.Decode is required")
	}
	opts.setDefaults()
	db := &DB{dir: dir, logger: logger, opts: opts, tenants: make(map[string]*tenant), cutSoon: make(chan struct{}, 1)}
	if err := os.MkdirAll(filepath.Join(dir, "tenants"), 0o755); err != nil {
		return nil, fmt.Errorf("create tenants dir: %w", err)
	}
	if err := db.loadTenants(); err != nil {
		db.closeBlocks()
		return nil, err
	}
	w, err := wal.Open(filepath.Join(dir, "wal"), logger, wal.Options{
		SegmentBytes: opts.WALSegmentBytes, Sync: opts.WALSync,
	})
	if err != nil {
		db.closeBlocks()
		return nil, fmt.Errorf("open wal: %w", err)
	}
	db.wal = w
	if err := db.replay(); err != nil {
		w.Close()
		db.closeBlocks()
		return nil, err
	}
	return db, nil
}

// loadTenants opens every tenant's blocks and checkpoint.
func (db *DB) loadTenants() error {
	ents, err := os.ReadDir(filepath.Join(db.dir, "tenants"))
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		id, err := parseTenantDirName(e.Name())
		if err != nil {
			db.logger.Warn("skipping unknown directory in tenants", "dir", e.Name())
			continue
		}
		t := newTenant(db.dir, id)
		if err := db.loadBlocks(t); err != nil {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(t.dir, checkpointFile))
		switch {
		case err == nil:
			cp, err := decodeCheckpoint(raw)
			if err != nil {
				return fmt.Errorf("tenant %s: %w", id, err)
			}
			t.cpSegment, t.delta = cp.walSegment, cp.delta
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("tenant %s: read checkpoint: %w", id, err)
		}
		os.Remove(filepath.Join(t.dir, checkpointFile+tmpSuffix))
		db.tenants[id] = t
	}
	return nil
}

// loadBlocks opens a tenant's blocks after removing what a crash left:
// temporary directories, and the sources of a compacted block that was
// written but whose sources were not all deleted yet.
func (db *DB) loadBlocks(t *tenant) error {
	bdir := t.blocksDir()
	ents, err := os.ReadDir(bdir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tenant %s: list blocks: %w", t.id, err)
	}
	metas := map[string]*blockMeta{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			db.logger.Info("removing leftover temporary block", "tenant", t.id, "block", name)
			if err := os.RemoveAll(filepath.Join(bdir, name)); err != nil {
				return fmt.Errorf("tenant %s: remove %s: %w", t.id, name, err)
			}
			continue
		}
		if _, err := parseID(name); err != nil || !e.IsDir() {
			db.logger.Warn("skipping unknown entry in blocks", "tenant", t.id, "block", name)
			continue
		}
		m, err := readMeta(filepath.Join(bdir, name))
		if err != nil {
			return fmt.Errorf("tenant %s: block %s: %w", t.id, name, err)
		}
		metas[name] = m
	}
	replaced := map[string]bool{}
	for _, m := range metas {
		for _, src := range m.Compaction.Sources {
			replaced[src] = true
		}
	}
	ids := make([]string, 0, len(metas))
	for id := range metas {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if replaced[id] {
			db.logger.Info("removing block replaced by compaction", "tenant", t.id, "block", id)
			if err := removeBlockDir(bdir, id); err != nil {
				return fmt.Errorf("tenant %s: %w", t.id, err)
			}
			continue
		}
		b, err := openBlock(filepath.Join(bdir, id))
		if err != nil {
			return fmt.Errorf("tenant %s: open block %s: %w", t.id, id, err)
		}
		t.blocks = append(t.blocks, b)
	}
	sortBlocks(t.blocks)
	return nil
}

// removeBlockDir deletes a block: first a rename out of the block
// namespace, so that a crash mid-delete leaves a temporary directory rather
// than a partial block.
func removeBlockDir(bdir, id string) error {
	tmp := filepath.Join(bdir, id+tmpSuffix)
	if err := os.Rename(filepath.Join(bdir, id), tmp); err != nil {
		return fmt.Errorf("remove block %s: %w", id, err)
	}
	if err := syncDir(bdir); err != nil {
		return fmt.Errorf("remove block %s: %w", id, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove block %s: %w", id, err)
	}
	return nil
}

// replay applies the log. A tenant's records below its checkpoint segment
// are skipped; those from there up to the segment of its newest block are
// in blocks already and only rebuild the delta state (a crash came between
// a block and its checkpoint); the rest go into the head.
func (db *DB) replay() error {
	blockSeg := map[string]int{}
	for id, t := range db.tenants {
		for _, b := range t.blocks {
			blockSeg[id] = max(blockSeg[id], b.meta.WALSegment)
		}
	}
	scratch := map[string]*head{}
	n, skipped := 0, 0
	err := db.wal.Replay(0, func(seg int, rec []byte) error {
		tenantID, payload, err := decodeRecord(rec)
		if err != nil {
			return err
		}
		t := db.tenant(tenantID)
		if seg < t.cpSegment {
			skipped++
			return nil
		}
		inputs, err := db.opts.Decode(payload)
		if err != nil {
			return fmt.Errorf("decode wal record %d: %w", n, err)
		}
		h := t.head
		if seg < blockSeg[tenantID] {
			if h = scratch[tenantID]; h == nil {
				h = newHead()
				scratch[tenantID] = h
			}
			skipped++
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, in := range inputs {
			t.apply(h, in)
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	now := db.opts.Now()
	for _, t := range db.tenants {
		t.lastAppend = now
	}
	db.logger.Info("wal replayed", "records", n, "skipped", skipped, "tenants", len(db.tenants))
	return nil
}

// Close waits for maintenance in progress, then closes the log and the
// blocks. Data in heads stays in the log for the next Open; call Flush
// first to write it into blocks instead.
func (db *DB) Close() error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	err := db.wal.Close()
	db.closeBlocks()
	return err
}

func (db *DB) closeBlocks() {
	for _, t := range db.tenants {
		t.blocksMu.Lock()
		for _, b := range t.blocks {
			b.close()
		}
		t.blocks = nil
		t.blocksMu.Unlock()
	}
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
		t = newTenant(db.dir, id)
		db.tenants[id] = t
	}
	return t
}

func (db *DB) lookupTenant(id string) *tenant {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.tenants[id]
}

// allTenants returns the tenants sorted by ID.
func (db *DB) allTenants() []*tenant {
	db.mu.RLock()
	out := make([]*tenant, 0, len(db.tenants))
	for _, t := range db.tenants {
		out = append(out, t)
	}
	db.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// tenantDirName escapes a tenant ID into one path element: bytes other
// than [A-Za-z0-9_-], and a leading dot, become %XX; the empty ID is "%".
func tenantDirName(id string) string {
	if id == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c == '.' && i > 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func parseTenantDirName(name string) (string, error) {
	if name == "%" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(name) {
			return "", fmt.Errorf("bad escape in tenant dir %q", name)
		}
		var v byte
		for _, h := range []byte{name[i+1], name[i+2]} {
			switch {
			case h >= '0' && h <= '9':
				v = v<<4 | (h - '0')
			case h >= 'A' && h <= 'F':
				v = v<<4 | (h - 'A' + 10)
			default:
				return "", fmt.Errorf("bad escape in tenant dir %q", name)
			}
		}
		b.WriteByte(v)
		i += 2
	}
	if tenantDirName(b.String()) != name {
		return "", fmt.Errorf("tenant dir %q is not in canonical form", name)
	}
	return b.String(), nil
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

// deltaState is the last cumulative profile of one series, keyed by stack
// content hash, so that the next one can be turned into a delta. It is
// never changed once stored in tenant.delta (toDelta stores a new one), so
// a shallow copy of the map is a snapshot.
type deltaState struct {
	last  map[uint64]int64
	total int64
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
	return st == nil
}
