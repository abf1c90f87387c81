package storage

import "time"

// Stats is what the database holds now, over every tenant, and what its
// background work did since Open.
type Stats struct {
	Tenants int
	// HeadSeries, HeadSamples and HeadBytes are the series, sample rows
	// and estimated memory of the in-memory heads, those cut but not yet
	// written as blocks included.
	HeadSeries, HeadSamples, HeadBytes int64
	// Blocks, BlockSamples and BlockBytes are the blocks on disk, their
	// sample rows and the size of their files.
	Blocks                   int
	BlockSamples, BlockBytes int64
	// OldestBlock is the start of the oldest block; zero with none.
	OldestBlock time.Time
	// Appends counts Append calls that stored something.
	Appends int64
	// CutFailures and CompactFailures count runs of Run's cuts and of
	// its compaction and retention that failed (and were retried).
	CutFailures, CompactFailures int64
	// CutFailingSince, when not zero, is since when cuts have failed
	// without one succeeding: blocks are not being written, and the heads
	// and the log keep what comes in. CutError is the last failure.
	CutFailingSince time.Time
	CutError        string
	// Quarantined counts the blocks and checkpoints that failed their
	// checks when the store opened and were moved aside.
	Quarantined int64
	// DamagedReads counts blocks left out of queries because their data
	// failed its checks as it was read.
	DamagedReads int64
	// Behind counts writes refused because a tenant's head was full
	// while the previous one was still being written (ErrBehind).
	Behind int64
	// HeadEvents counts the events in heads, live and being written.
	HeadEvents int64
	// SyncFailures counts a ReadOnly store's syncs with its bucket that
	// failed in part or whole (and were tried again).
	SyncFailures int64
	// Compactor says whether the store is a compactor's, and LeaseHeld
	// whether it holds the bucket's compactor lease now.
	Compactor, LeaseHeld bool
	// BlocksMarked counts the blocks a compactor marked for deletion,
	// BlocksDeleted the marked blocks it deleted after the delay.
	BlocksMarked, BlocksDeleted int64
}

// Appends counts Append calls that stored something, without the locks
// that Stats takes: cheap enough to poll, to see when writes pause.
func (db *DB) Appends() int64 { return db.appends.Load() }

// Stats reports what db holds. It takes each tenant's locks for reading,
// briefly; it is meant for metrics, gathered every few seconds.
func (db *DB) Stats() Stats {
	db.mu.RLock()
	tenants := make([]*tenant, 0, len(db.tenants))
	for _, t := range db.tenants {
		tenants = append(tenants, t)
	}
	db.mu.RUnlock()
	st := Stats{
		Tenants:         len(tenants),
		Appends:         db.appends.Load(),
		CutFailures:     db.cutFailures.Load(),
		CompactFailures: db.compactFailures.Load(),
		Quarantined:     db.quarantined.Load(),
		DamagedReads:    db.damagedReads.Load(),
		Behind:          db.behindRefusals.Load(),
		SyncFailures:    db.syncFailures.Load(),
		Compactor:       db.opts.Compactor != nil,
		LeaseHeld:       db.leaseHeld.Load(),
		BlocksMarked:    db.blocksMarked.Load(),
		BlocksDeleted:   db.blocksDeleted.Load(),
	}
	if f := db.cutFailing.Load(); f != nil {
		st.CutFailingSince, st.CutError = f.since, f.err
	}
	var oldest int64
	for _, t := range tenants {
		t.mu.RLock()
		heads := []*head{t.head}
		for _, f := range t.frozen {
			heads = append(heads, f.head)
		}
		for _, h := range heads {
			st.HeadSeries += int64(len(h.all))
			st.HeadSamples += h.samples
			st.HeadBytes += h.memBytes()
			st.HeadEvents += int64(h.ev.len())
		}
		t.mu.RUnlock()
		t.blocksMu.RLock()
		for _, b := range t.blocks {
			st.Blocks++
			st.BlockSamples += b.meta.Stats.Samples
			st.BlockBytes += b.meta.Stats.Bytes
			if oldest == 0 || b.meta.MinT < oldest {
				oldest = b.meta.MinT
			}
		}
		t.blocksMu.RUnlock()
	}
	if oldest != 0 {
		st.OldestBlock = time.Unix(0, oldest)
	}
	return st
}

// HeadSeries returns the series in the live head of tenantID: those that
// AppendLimited's limit counts. A head cut into a block starts again at 0.
func (db *DB) HeadSeries(tenantID string) int {
	t := db.lookupTenant(tenantID)
	if t == nil {
		return 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.head.all)
}
