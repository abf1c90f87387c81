package storage

import (
	"context"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// Scope is how much of a selection sources of one kind hold: what a query
// over it reads. It is computed from indexes, without reading samples.
type Scope struct {
	// Sources is how many heads or blocks hold some of the selection.
	Sources int
	// Series, Profiles and Samples are the selected series, their
	// profiles in the range, and those profiles' sample rows.
	Series, Profiles, Samples int64
	// Bytes, for blocks, is the size of the files of the blocks that hold
	// some of the selection; heads are in memory and count none.
	Bytes int64
}

func (s *Scope) add(o Scope) {
	if o.Series == 0 {
		return
	}
	s.Sources++
	s.Series += o.Series
	s.Profiles += o.Profiles
	s.Samples += o.Samples
	s.Bytes += o.Bytes
}

// Analyze says how much of a tenant's data a select with p reads, in its
// heads (in memory) and in its blocks (on disk). A series stored in
// several sources counts once in each. Sample and span filters are not
// applied: a query reads the rows they test.
func (db *DB) Analyze(ctx context.Context, tenantID string, p SelectParams) (heads, blocks Scope, err error) {
	t, rv, err := db.readTenant(ctx, tenantID, p.Start, p.End)
	if t == nil || err != nil {
		return heads, blocks, err
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	for _, s := range t.sources(&p, rv) {
		if err := ctx.Err(); err != nil {
			return heads, blocks, err
		}
		switch s := s.(type) {
		case *head:
			heads.add(s.scope(p))
		case *block:
			if rv.isHead(s) {
				// An ingester's head, written as a block for the
				// query: in memory there.
				sc := s.scope(p)
				sc.Bytes = 0
				heads.add(sc)
				continue
			}
			blocks.add(s.scope(p))
		}
	}
	return heads, blocks, nil
}

func (h *head) scope(p SelectParams) Scope {
	var sc Scope
	pl := h.plan(p)
	for _, s := range h.all {
		if !s.overlaps(p.Start, p.End) || !labels.MatchLabels(s.lbls, pl.series...) {
			continue
		}
		sid, ok := p.seriesOK(s.lbls)
		if !ok {
			continue
		}
		var n, rows int64
		for i := range s.profiles {
			mp := &s.profiles[i]
			if mp.ts >= p.Start && mp.ts < p.End && p.wantProfile(sid, mp.ts) {
				n++
				rows += int64(len(mp.stacks))
			}
		}
		if n > 0 {
			sc.Series++
			sc.Profiles += n
			sc.Samples += rows
		}
	}
	return sc
}

func (b *block) scope(p SelectParams) Scope {
	var sc Scope
	pl := b.plan(p)
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
		var n, rows int64
		for k := i; k < j; k++ {
			if p.wantProfile(sid, b.ix.ts[k]) {
				a, e := b.ix.rows(k, k+1)
				n++
				rows += e - a
			}
		}
		if n > 0 {
			sc.Series++
			sc.Profiles += n
			sc.Samples += rows
		}
	}
	if sc.Series > 0 {
		sc.Bytes = b.meta.Stats.Bytes
	}
	return sc
}
