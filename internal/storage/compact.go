package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// Compaction merges a tenant's small blocks into bigger ones. For each of
// Options.CompactionRanges, smallest first, blocks shorter than the range
// are grouped by the aligned window of that range their first profile
// falls in; a window with two or more such blocks, which has ended (a
// newer block starts after it), is merged into one block. The new block's
// symbols are rebuilt by interning each source's tables into fresh ones,
// which deduplicates them; its samples are rewritten in series, time and
// stack order. The sources are deleted only once the new block's meta.json
// is uploaded; Open finishes that deletion after a crash, and the next
// Compact after an error.

// Compact runs compaction and retention for every tenant once. A
// compactor's store (Options.Compactor) runs a compactor's pass instead
// (compactorPass), without the lease, which Run takes.
func (db *DB) Compact(ctx context.Context) error {
	if db.opts.Compactor != nil {
		return db.compactorPass(ctx)
	}
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	if db.closed {
		return errClosed
	}
	var errs []error
	for _, t := range db.allTenants() {
		if err := db.compactTenant(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.id, err))
		}
		if err := db.applyRetention(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.id, err))
		}
	}
	return errors.Join(errs...)
}

func (db *DB) compactTenant(ctx context.Context, t *tenant) error {
	// A block left over by a failed compaction may list sources that are
	// still in use: compacting them again before it is gone would give
	// two blocks replacing the same sources.
	if err := db.retryDeletes(ctx, t); err != nil {
		return fmt.Errorf("compaction waits for deletions: %w", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.blocksMu.RLock()
		group := planCompaction(db.compactable(t.blocks), db.opts.CompactionRanges)
		t.blocksMu.RUnlock()
		if group == nil {
			return nil
		}
		if err := db.compactBlocks(ctx, t, group); err != nil {
			return err
		}
	}
}

// compactable returns the blocks that compaction may merge: all of them,
// but for a compactor, which leaves out the blocks cut from a head less
// than CompactorOptions.MinBlockAge ago (by the time in their ID): their
// ingester may still serve their data from memory, and a querier that
// asks it tells that data apart from the bucket's by the block's ID.
func (db *DB) compactable(blocks []*block) []*block {
	c := db.opts.Compactor
	if c == nil || c.MinBlockAge <= 0 {
		return blocks
	}
	cutoff := db.opts.Now().Add(-c.MinBlockAge)
	var out []*block
	for _, b := range blocks {
		if b.meta.Compaction.Level > 1 {
			out = append(out, b) // made by a compactor, in no head
			continue
		}
		if at, err := parseID(b.meta.ID); err == nil && !at.After(cutoff) {
			out = append(out, b)
		}
	}
	return out
}

// planCompaction returns the blocks to merge next, or nil.
func planCompaction(blocks []*block, ranges []time.Duration) []*block {
	if len(blocks) < 2 {
		return nil
	}
	var newest int64 = -1 << 63
	for _, b := range blocks {
		newest = max(newest, b.meta.MaxT)
	}
	for _, r := range ranges {
		rn := int64(r)
		if rn <= 0 {
			continue
		}
		var group []*block
		var window int64
		flush := func() []*block {
			if len(group) >= 2 && window+rn <= newest {
				return group
			}
			return nil
		}
		for _, b := range blocks { // sorted by minT
			if b.meta.MaxT-b.meta.MinT >= rn {
				continue
			}
			w := floorDiv(b.meta.MinT, rn) * rn
			if group != nil && w != window {
				if g := flush(); g != nil {
					return g
				}
				group = nil
			}
			window = w
			group = append(group, b)
		}
		if g := flush(); g != nil {
			return g
		}
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// compactBlocks merges group into one new block and swaps it in.
func (db *DB) compactBlocks(ctx context.Context, t *tenant, group []*block) error {
	start := time.Now()
	id := db.ids.next(db.opts.Now())
	dir := t.blocksDir() + id + "/"
	meta, undeleted, err := writeCompactedBlock(ctx, group, db.bkt, t.blocksDir(), id)
	if err != nil {
		if undeleted != nil {
			t.undeleted = append(t.undeleted, dir)
		}
		return errors.Join(err, undeleted)
	}
	nb, err := openBlock(ctx, db.bkt, dir, meta)
	if err != nil {
		// Take the block back: left in place it would replace its
		// sources at the next Open, and the next round would write
		// another one from the same sources.
		err = fmt.Errorf("open compacted block %s: %w", id, err)
		if db.opts.Compactor != nil {
			// A compactor leaves it: queriers may have opened it and
			// dropped its sources already, and a compactor that lost
			// its lease (the context cancelled) must not change the
			// bucket. The next pass's sync opens it and marks its
			// sources, or leaves it out as damaged and keeps them.
			return err
		}
		if rerr := db.removeBlock(context.WithoutCancel(ctx), t, dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	t.blocksMu.Lock()
	t.blocks = slices.DeleteFunc(t.blocks, func(b *block) bool { return slices.Contains(group, b) })
	t.blocks = append(t.blocks, nb)
	sortBlocks(t.blocks)
	t.blocksMu.Unlock()
	var errs []error
	ids := make([]string, len(group))
	for i, b := range group {
		ids[i] = b.meta.ID
		b.close()
		if db.opts.Compactor != nil {
			continue // marked below, deleted after the deletion delay
		}
		if err := db.removeBlock(ctx, t, b.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if db.opts.Compactor != nil {
		// Should this fail, or the compactor stop first, the next pass
		// finds the sources unmarked beside the block that replaces
		// them, and marks them (compactorPass).
		if err := db.markBlocks(ctx, t, ids, "compacted into "+id); err != nil {
			errs = append(errs, err)
		}
	}
	db.logger.Info("compaction done", "tenant", t.id, "block", id,
		"sources", strings.Join(ids, ","), "level", meta.Compaction.Level,
		"samples", meta.Stats.Samples, "bytes", meta.Stats.Bytes, "dur", time.Since(start))
	return errors.Join(errs...)
}

// writeCompactedBlock writes the merge of srcs as block id in the bucket
// directory blocksDir. When it fails, it returns with the block deleted,
// or with a non-nil undeleted error if that failed too.
func writeCompactedBlock(ctx context.Context, srcs []*block, bkt bucket.Bucket, blocksDir, id string) (meta *blockMeta, undeleted, err error) {
	w := newBlockWriter(ctx, bkt, blocksDir, id)
	meta, err = mergeBlocks(ctx, w, srcs)
	if err != nil {
		return nil, w.abort(), fmt.Errorf("write block %s: %w", id, err)
	}
	return meta, nil, nil
}

func mergeBlocks(ctx context.Context, w *blockWriter, srcs []*block) (*blockMeta, error) {
	syms := NewSymbols()
	sets := []labels.Labels{{}}
	setIdx := map[string]uint32{"": 0}
	stackMaps := make([][]uint32, len(srcs))
	setMaps := make([][]uint32, len(srcs))
	spans := newSpanTable()
	spanMaps := make([][]uint32, len(srcs))
	comp := blockCompaction{Level: 1}
	walSeg := 0
	for i, b := range srcs {
		stackMaps[i] = syms.importTables(b.syms)
		setMaps[i] = make([]uint32, len(b.sets))
		for j, set := range b.sets {
			k := setKey(set)
			id, ok := setIdx[k]
			if !ok {
				id = uint32(len(sets))
				sets = append(sets, set)
				setIdx[k] = id
			}
			setMaps[i][j] = id
		}
		spanMaps[i] = make([]uint32, len(b.spans))
		for j, r := range b.spans {
			spanMaps[i][j], _ = spans.intern(r)
		}
		comp.Level = max(comp.Level, b.meta.Compaction.Level+1)
		comp.Sources = append(comp.Sources, b.meta.ID)
		comp.Sources = append(comp.Sources, b.meta.Compaction.Sources...)
		walSeg = max(walSeg, b.meta.WALSegment)
		for inst, seg := range b.meta.Instances {
			w.noteInstance(inst, seg)
		}
		if b.meta.Instance != "" {
			w.noteInstance(b.meta.Instance, b.meta.WALSegment)
		}
	}
	slices.Sort(comp.Sources)
	comp.Sources = slices.Compact(comp.Sources)

	// The union of the sources' series, in label order.
	var all []labels.Labels
	for _, b := range srcs {
		for _, s := range b.ix.series {
			all = append(all, s.lbls)
		}
	}
	slices.SortFunc(all, labels.Compare)
	all = slices.CompactFunc(all, func(a, b labels.Labels) bool { return a.Equal(b) })

	scanners := make([]*scanner, len(srcs))
	for i, b := range srcs {
		scanners[i] = b.newScanner(true, true)
		defer scanners[i].close()
	}
	cursor := make([]int, len(srcs)) // next series per source; both lists are sorted
	for _, lbls := range all {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var profs []memProfile
		for i, b := range srcs {
			c := cursor[i]
			if c >= len(b.ix.series) || !b.ix.series[c].lbls.Equal(lbls) {
				continue
			}
			cursor[i]++
			s := &b.ix.series[c]
			base := len(profs)
			for k := s.first; k < s.first+s.n; k++ {
				profs = append(profs, memProfile{ts: b.ix.ts[k]})
			}
			sm, spm, stm := setMaps[i], spanMaps[i], stackMaps[i]
			err := b.scanProfiles(scanners[i], s.first, s.first+s.n, func(k int, bt *sampleBatch) error {
				if err := b.checkBatch(bt); err != nil {
					return err
				}
				mp := &profs[base+k-s.first]
				for r, st := range bt.stacks {
					mp.stacks = append(mp.stacks, stm[st])
					mp.values = append(mp.values, bt.values[r])
				}
				if bt.sets != nil {
					if mp.sets == nil {
						mp.sets = make([]uint32, len(mp.stacks)-len(bt.stacks), len(mp.stacks))
					}
					for _, set := range bt.sets {
						mp.sets = append(mp.sets, sm[set])
					}
				} else if mp.sets != nil {
					mp.sets = append(mp.sets, make([]uint32, len(bt.stacks))...)
				}
				if bt.spans != nil {
					if mp.spans == nil {
						mp.spans = make([]uint32, len(mp.stacks)-len(bt.stacks), len(mp.stacks))
					}
					for _, span := range bt.spans {
						mp.spans = append(mp.spans, spm[span])
					}
				} else if mp.spans != nil {
					mp.spans = append(mp.spans, make([]uint32, len(bt.stacks))...)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("read block %s: %w", b.meta.ID, err)
			}
		}
		slices.SortStableFunc(profs, func(a, b memProfile) int { return cmp.Compare(a.ts, b.ts) })
		for i := range profs {
			profs[i] = sortedRows(profs[i])
		}
		if err := w.addSeries(lbls, profs); err != nil {
			return nil, err
		}
	}
	if err := mergeEvents(ctx, w, srcs); err != nil {
		return nil, err
	}
	return w.finish(syms.snapshot(), sets, spans.refs, comp, walSeg)
}

// setKey is a per-sample label set as a map key.
func setKey(set labels.Labels) string {
	var b strings.Builder
	set.Range(func(l labels.Label) {
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
		b.WriteByte(0)
	})
	return b.String()
}

// importTables interns every entry of src into s and returns, per stack
// node of src, its node in s. Equal strings, mappings, functions,
// locations and stacks collapse into one.
func (s *Symbols) importTables(src *Symbols) []uint32 {
	strs := make([]uint32, len(src.Strings))
	for i, str := range src.Strings {
		strs[i] = s.String(str)
	}
	maps := make([]uint32, len(src.Mappings))
	for i, m := range src.Mappings {
		m.File, m.BuildID = strs[m.File], strs[m.BuildID]
		maps[i] = s.mapping(m)
	}
	funcs := make([]uint32, len(src.Functions))
	for i, f := range src.Functions {
		f.Name, f.SystemName, f.Filename = strs[f.Name], strs[f.SystemName], strs[f.Filename]
		funcs[i] = s.function(f)
	}
	locs := make([]uint32, len(src.Locations))
	var lines []Line
	for i := range src.Locations {
		if i == 0 {
			continue // the reserved "no location"
		}
		l := src.Locations[i]
		lines = lines[:0]
		for _, ln := range src.LocationLines(uint32(i)) {
			lines = append(lines, Line{Function: funcs[ln.Function], Line: ln.Line})
		}
		locs[i] = s.location(maps[l.Mapping], l.Address, l.IsFolded, lines)
	}
	stacks := make([]uint32, len(src.StackParent))
	for i := 1; i < len(src.StackParent); i++ {
		stacks[i] = s.stack(stacks[src.StackParent[i]], locs[src.StackLoc[i]])
	}
	return stacks
}
