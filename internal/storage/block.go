package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/priority"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// A block is an immutable set of objects in the bucket, holding one
// tenant's profiles over a time range (docs/storage-format.md):
//
//	<tenant>/blocks/<id>/
//	  meta.json        what the block holds, uploaded last
//	  index.bin        series labels, and per profile: time, row count, total
//	  symbols.bin      symbol tables, stack tree and per-sample label sets
//	  samples.parquet  sample rows sorted by series, time, stack
//	  spans.bin        the requests that samples name, when any does
//
// A block exists once its meta.json does, and stops existing when its
// meta.json is deleted, first; a block directory without meta.json is
// debris of an interrupted upload or deletion. An open block keeps its
// symbols and index in memory (about 24 bytes per profile plus the symbol
// tables) and reads samples from the bucket per query.

const (
	metaFile    = "meta.json"
	indexFile   = "index.bin"
	symbolsFile = "symbols.bin"
	samplesFile = "samples.parquet"

	blockVersion = 1
	// tmpSuffix marks a file being replaced (the checkpoint), and the
	// block directories that Hearth wrote or deleted under a temporary
	// name before blocks went through a bucket; Open removes both.
	tmpSuffix = ".tmp"
)

// blockMeta is meta.json.
type blockMeta struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	// MinT and MaxT are the first and last profile timestamps, unix
	// nanoseconds, both inclusive.
	MinT       int64           `json:"minT"`
	MaxT       int64           `json:"maxT"`
	Stats      blockStats      `json:"stats"`
	Compaction blockCompaction `json:"compaction"`
	// WALSegment is the first write-ahead log segment whose records of
	// this tenant are not in this block or an older one.
	WALSegment int `json:"walSegment"`
	// Instance names the store that cut the block from its head, when it
	// shares its bucket (Options.SharedBucket): WALSegment counts the
	// segments of that store's log, and no other's.
	Instance string `json:"instance,omitempty"`
	// Instances are, for a block compacted from blocks that instances
	// sharing the bucket cut, the WALSegment of each instance's newest
	// source, by instance: the block holds every record of that
	// instance's log below it. An instance's replay goes by it once
	// its own blocks are deleted, so that records a compactor merged
	// are not replayed into the head again.
	Instances map[string]int `json:"instances,omitempty"`
	// Events describes events.parquet; a block without events has none.
	Events *eventsMeta `json:"events,omitempty"`
}

// events returns the events part of m, empty when the block has none.
func (m *blockMeta) events() *eventsMeta {
	if m.Events == nil {
		return &eventsMeta{}
	}
	return m.Events
}

type blockStats struct {
	Series   int64 `json:"series"`
	Profiles int64 `json:"profiles"`
	Samples  int64 `json:"samples"`
	// Spans is how many requests spans.bin names; a block without
	// spans has no such file.
	Spans int64 `json:"spans,omitempty"`
	// Bytes is the size of the block's files, meta.json excepted.
	Bytes int64 `json:"bytes"`
}

type blockCompaction struct {
	// Level is 1 for a block cut from a head, one more than its highest
	// source for a compacted block.
	Level int `json:"level"`
	// Sources are the IDs of every block this one replaces, transitively.
	Sources []string `json:"sources,omitempty"`
}

func decodeMeta(b []byte) (*blockMeta, error) {
	var m blockMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode meta: %w", err)
	}
	if m.Version != blockVersion {
		return nil, fmt.Errorf("decode meta: unknown version %d", m.Version)
	}
	if _, err := parseID(m.ID); err != nil {
		return nil, fmt.Errorf("decode meta: id %q: %w", m.ID, err)
	}
	for _, s := range m.Compaction.Sources {
		if _, err := parseID(s); err != nil {
			return nil, fmt.Errorf("decode meta: source %q: %w", s, err)
		}
	}
	for _, seg := range m.Instances {
		if seg < 0 {
			return nil, errors.New("decode meta: negative instance segment")
		}
	}
	if m.MinT > m.MaxT || m.Compaction.Level < 1 || m.WALSegment < 0 {
		return nil, errors.New("decode meta: inconsistent fields")
	}
	return &m, nil
}

// getObject reads a whole object.
func getObject(ctx context.Context, bkt bucket.Bucket, name string) ([]byte, error) {
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// A local file knows its size: read it into one buffer of that size,
	// as os.ReadFile does, rather than growing one (symbol tables are
	// hundreds of KB, read for every block at Open).
	if st, ok := rc.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Size() > 0 {
			buf := make([]byte, fi.Size())
			if _, err := io.ReadFull(rc, buf); err != nil {
				return nil, err
			}
			return buf, nil
		}
	}
	return io.ReadAll(rc)
}

// readMeta reads the meta.json of the block in the bucket directory dir.
func readMeta(ctx context.Context, bkt bucket.Bucket, dir string) (*blockMeta, error) {
	b, err := getObject(ctx, bkt, dir+metaFile)
	if err != nil {
		return nil, err
	}
	return decodeMeta(b)
}

// block is an open block. It is immutable and safe for concurrent use
// until close.
type block struct {
	dir  string // its bucket directory, "<tenant>/blocks/<id>/"
	meta blockMeta

	syms  *Symbols
	sets  []labels.Labels
	spans []SpanRef // entry 0 is no request
	// legacy translates the sample sets of a block written before
	// spans.bin, whose sets hold span labels; nil for other blocks.
	legacy      *legacySpans
	sampleNames map[string]struct{}
	seriesNames map[string]struct{}
	ix          *blockIndex

	r  bucket.ReaderAt // samples.parquet
	sr *samplesReader

	evr bucket.ReaderAt // events.parquet, nil without events
	ev  *eventsReader
}

// openBlock opens the block in the bucket directory dir, whose meta.json
// holds meta, reading its symbols and index into memory and checking that
// they agree with the samples.
func openBlock(ctx context.Context, bkt bucket.Bucket, dir string, meta *blockMeta) (_ *block, err error) {
	if path.Base(dir) != meta.ID {
		return nil, fmt.Errorf("block in %s says its ID is %s", dir, meta.ID)
	}
	// b is not the named result: the deferred close below needs it after
	// a failed return has set the result to nil.
	b := &block{dir: dir, meta: *meta}
	raw, err := getObject(ctx, bkt, dir+symbolsFile)
	if err != nil {
		return nil, err
	}
	if b.syms, b.sets, err = DecodeSymbols(raw); err != nil {
		return nil, err
	}
	b.spans = []SpanRef{{}}
	if meta.Stats.Spans > 0 {
		raw, err = getObject(ctx, bkt, dir+spansFile)
		if err != nil {
			return nil, err
		}
		if b.spans, err = decodeSpans(raw); err != nil {
			return nil, err
		}
		if int64(len(b.spans)-1) != meta.Stats.Spans {
			return nil, fmt.Errorf("spans.bin holds %d spans, meta says %d", len(b.spans)-1, meta.Stats.Spans)
		}
	}
	if meta.Stats.Spans == 0 {
		b.legacy = takeLegacySpans(&b.sets, &b.spans)
	}
	raw, err = getObject(ctx, bkt, dir+indexFile)
	if err != nil {
		return nil, err
	}
	if b.ix, err = decodeIndex(raw); err != nil {
		return nil, err
	}
	b.r, err = bkt.ReaderAt(ctx, dir+samplesFile)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.r.Close()
		}
	}()
	if b.sr, err = openSamples(b.r, b.r.Size()); err != nil {
		return nil, fmt.Errorf("open samples: %w", err)
	}
	if b.sr.numRows() != b.ix.numRows() {
		return nil, fmt.Errorf("samples hold %d rows, index says %d", b.sr.numRows(), b.ix.numRows())
	}
	if meta.Stats.Spans > 0 && b.sr.columns <= colSpan {
		return nil, errors.New("block has spans but its samples have no span column")
	}
	if meta.Events != nil {
		if b.evr, err = bkt.ReaderAt(ctx, dir+eventsFile); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				b.evr.Close()
			}
		}()
		if b.ev, err = openEvents(b.evr, b.evr.Size(), meta.Events); err != nil {
			return nil, fmt.Errorf("open events: %w", err)
		}
	}
	b.sampleNames = map[string]struct{}{}
	for _, set := range b.sets {
		set.Range(func(l labels.Label) { b.sampleNames[l.Name] = struct{}{} })
	}
	for _, r := range b.spans {
		spanNames(r, b.sampleNames)
	}
	b.seriesNames = map[string]struct{}{}
	for _, s := range b.ix.series {
		s.lbls.Range(func(l labels.Label) { b.seriesNames[l.Name] = struct{}{} })
	}
	return b, nil
}

func (b *block) close() error {
	err := b.r.Close()
	if b.evr != nil {
		err = errors.Join(err, b.evr.Close())
	}
	return err
}

func (b *block) overlaps(start, end int64) bool {
	return b.meta.MinT < end && b.meta.MaxT >= start
}

func (b *block) plan(p SelectParams) plan {
	return makePlan(p, b.seriesNames, b.sets, b.spans)
}

func (s *indexSeries) overlaps(start, end int64) bool {
	return s.n > 0 && s.minT < end && s.maxT >= start
}

// scanProfiles reads the rows of the flat profiles [i, j) and calls fn per
// profile with its rows. The batch slices are only valid during the call.
// Profiles larger than a batch come in several calls with the same k.
func (b *block) scanProfiles(sc *scanner, i, j int, fn func(k int, bt *sampleBatch) error) error {
	a, e := b.ix.rows(i, j)
	k := i
	row := a
	return sc.scan(a, e, func(bt *sampleBatch) error {
		if b.legacy != nil && bt.sets != nil {
			if err := b.legacy.translate(sc, bt); err != nil {
				return fmt.Errorf("block %s: %w", b.meta.ID, err)
			}
		}
		// Split the batch at profile boundaries.
		off := 0
		n := len(bt.stacks)
		for off < n {
			for k < j && b.ix.rowEnd[k] <= row {
				k++
			}
			if k >= j {
				return errors.New("rows past the last profile")
			}
			m := int(min(int64(n-off), b.ix.rowEnd[k]-row))
			sub := sampleBatch{stacks: bt.stacks[off : off+m], values: bt.values[off : off+m]}
			if bt.sets != nil {
				sub.sets = bt.sets[off : off+m]
			}
			if bt.spans != nil {
				sub.spans = bt.spans[off : off+m]
			}
			if err := fn(k, &sub); err != nil {
				return err
			}
			off += m
			row += int64(m)
		}
		return nil
	})
}

// checkBatch verifies that a batch's IDs are within the block's tables.
func (b *block) checkBatch(bt *sampleBatch) error {
	ns := int32(len(b.syms.StackParent))
	for _, st := range bt.stacks {
		if st < 0 || st >= ns {
			return fmt.Errorf("block %s: stack %d out of range", b.meta.ID, st)
		}
	}
	nset := int32(len(b.sets))
	for _, s := range bt.sets {
		if s < 0 || s >= nset {
			return fmt.Errorf("block %s: sample set %d out of range", b.meta.ID, s)
		}
	}
	nspan := int32(len(b.spans))
	for _, s := range bt.spans {
		if s < 0 || s >= nspan {
			return fmt.Errorf("block %s: span %d out of range", b.meta.ID, s)
		}
	}
	return nil
}

func (b *block) hasSets() bool  { return len(b.sets) > 1 }
func (b *block) hasSpans() bool { return len(b.spans) > 1 }

// newScanner reads what a scan of b needs: the sample set and span
// columns when b has them and they are asked for. An old block's spans
// come from its sets.
func (b *block) newScanner(sets, spans bool) *scanner {
	if b.legacy != nil && (sets || spans) {
		return b.sr.newScanner(true, false, false)
	}
	return b.sr.newScanner(sets && b.hasSets(), spans && b.hasSpans(), false)
}

func (b *block) selectStacks(ctx context.Context, p SelectParams) ([]*StackValues, error) {
	pl := b.plan(p)
	var keep []bool
	if p.Keep != nil {
		keep = p.Keep(b.syms)
	}
	byType := map[string]*StackValues{}
	sc := b.newScanner(pl.needSets(), pl.needSpans())
	defer sc.close()
	meter := priority.NewMeter(ctx, stepSamples)
	for si := range b.ix.series {
		s := &b.ix.series[si]
		if !s.overlaps(p.Start, p.End) || !labels.MatchLabels(s.lbls, pl.series...) {
			continue
		}
		sid, ok := p.seriesOK(s.lbls)
		if !ok {
			continue
		}
		i, j := b.ix.profileRange(s, p.Start, p.End)
		if i == j {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.Scan != nil {
			a, e := b.ix.rows(i, j)
			if err := p.Scan(s.lbls, e-a); err != nil {
				return nil, err
			}
		}
		typ := s.lbls.Get(labels.ProfileType)
		sv := byType[typ]
		if sv == nil {
			sv = &StackValues{Type: typ, Syms: b.syms, Values: make([]int64, len(b.syms.StackParent)), Sets: b.sets, Spans: b.spans}
			byType[typ] = sv
		}
		err := b.scanProfiles(sc, i, j, func(k int, bt *sampleBatch) error {
			if !p.wantProfile(sid, b.ix.ts[k]) {
				return nil
			}
			if err := b.checkBatch(bt); err != nil {
				return err
			}
			if err := meter.Add(len(bt.stacks)); err != nil {
				return err
			}
			if bt.sets == nil && bt.spans == nil && keep == nil && !pl.filters() {
				vals := sv.Values
				for r, st := range bt.stacks {
					vals[st] += bt.values[r]
				}
				return nil
			}
			for r, st := range bt.stacks {
				var set, span uint32
				if bt.sets != nil {
					set = uint32(bt.sets[r])
				}
				if bt.spans != nil {
					span = uint32(bt.spans[r])
				}
				addSample(sv, uint32(st), set, span, bt.values[r], keep, pl)
			}
			return nil
		})
		if err != nil {
			return nil, readFailed(ctx, b, err)
		}
	}
	return sortedByType(byType), nil
}

func (b *block) selectSeries(ctx context.Context, p SelectParams) ([]SeriesPoints, error) {
	pl := b.plan(p)
	var keep []bool
	if p.Keep != nil {
		keep = p.Keep(b.syms)
	}
	filtered := keep != nil || pl.filters() || pl.apartSpans
	var sc *scanner
	if filtered {
		sc = b.newScanner(pl.needSets(), pl.needSpans())
		defer sc.close()
	}
	var out []SeriesPoints
	for si := range b.ix.series {
		s := &b.ix.series[si]
		if !s.overlaps(p.Start, p.End) || !labels.MatchLabels(s.lbls, pl.series...) {
			continue
		}
		sid, ok := p.seriesOK(s.lbls)
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		i, j := b.ix.profileRange(s, p.Start, p.End)
		if p.Scan != nil {
			rows := int64(j - i)
			if filtered {
				a, e := b.ix.rows(i, j)
				rows = e - a
			}
			if err := p.Scan(s.lbls, rows); err != nil {
				return nil, err
			}
		}
		sp := SeriesPoints{Labels: s.lbls, Points: make([]Point, 0, j-i)}
		if !filtered {
			for k := i; k < j; k++ {
				if p.wantProfile(sid, b.ix.ts[k]) {
					sp.Points = append(sp.Points, Point{b.ix.ts[k], b.ix.totals[k]})
				}
			}
			out = append(out, sp)
			continue
		}
		sums := make([]int64, j-i)
		// bySpan is the current profile's sums per request; a profile's
		// rows may come in several batches, but the profiles in order.
		bySpan, spanK := map[uint32]int64{}, -1
		flush := func() {
			if spanK >= 0 && len(bySpan) > 0 {
				sp.Spans = appendSpanSums(sp.Spans, b.ix.ts[spanK], bySpan, b.spans)
				clear(bySpan)
			}
		}
		err := b.scanProfiles(sc, i, j, func(k int, bt *sampleBatch) error {
			if !p.wantProfile(sid, b.ix.ts[k]) {
				return nil
			}
			if err := b.checkBatch(bt); err != nil {
				return err
			}
			if k != spanK {
				flush()
				spanK = k
			}
			var sum int64
			for r, st := range bt.stacks {
				if keep != nil && !keep[st] {
					continue
				}
				var set, span uint32
				if bt.sets != nil {
					set = uint32(bt.sets[r])
				}
				if bt.spans != nil {
					span = uint32(bt.spans[r])
				}
				if !pl.passes(set, span) {
					continue
				}
				sum += bt.values[r]
				if pl.apartSpans && span != 0 {
					bySpan[span] += bt.values[r]
				}
			}
			sums[k-i] += sum
			return nil
		})
		if err != nil {
			return nil, readFailed(ctx, b, err)
		}
		flush()
		for k := i; k < j; k++ {
			if p.wantProfile(sid, b.ix.ts[k]) {
				sp.Points = append(sp.Points, Point{b.ix.ts[k], sums[k-i]})
			}
		}
		out = append(out, sp)
	}
	return out, nil
}

func (b *block) matchSeries(p SelectParams, out map[uint64][]labels.Labels) {
	start, end, pl := p.Start, p.End, b.plan(p)
	for i := range b.ix.series {
		s := &b.ix.series[i]
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			addSeries(out, s.lbls)
		}
	}
}

func (b *block) labelNames(p SelectParams, names map[string]struct{}) {
	start, end, pl := p.Start, p.End, b.plan(p)
	found := false
	for i := range b.ix.series {
		s := &b.ix.series[i]
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			s.lbls.Range(func(l labels.Label) { names[l.Name] = struct{}{} })
			found = true
		}
	}
	if found {
		// The tenant's per-sample names, as matchers see them.
		maps.Copy(names, p.sampleNames)
	}
}

func (b *block) labelValues(name string, p SelectParams, vals map[string]struct{}) {
	start, end, pl := p.Start, p.End, b.plan(p)
	if isSampleLabel(name, p.sampleNames, b.seriesNames) {
		sampleValues(name, b.sets, b.spans, pl, vals)
		return
	}
	for i := range b.ix.series {
		s := &b.ix.series[i]
		if s.overlaps(start, end) && labels.MatchLabels(s.lbls, pl.series...) {
			if v := s.lbls.Get(name); v != "" {
				vals[v] = struct{}{}
			}
		}
	}
}

// sortBlocks orders blocks by time, then ID.
func sortBlocks(bs []*block) {
	slices.SortFunc(bs, func(a, b *block) int {
		if c := cmp.Compare(a.meta.MinT, b.meta.MinT); c != 0 {
			return c
		}
		return cmp.Compare(a.meta.ID, b.meta.ID)
	})
}
