package storage

import "fmt"

// replay applies the log. A tenant's records below its checkpoint segment
// are skipped; those from there up to the segment of its newest block are
// in blocks already and only rebuild the delta state (a crash came between
// a block and its checkpoint); the rest go into the head.
//
// A record of a type this version does not know fails the replay, and so
// Open: it was written by a newer Hearth, and its types to come (events,
// deletions) would be lost, or deleted data brought back, if it were
// skipped, for good once a head cut truncated the log beneath it.
func (db *DB) replay() error {
	blockSeg := map[string]int{}
	for id, t := range db.tenants {
		for _, b := range t.blocks {
			blockSeg[id] = max(blockSeg[id], b.meta.WALSegment)
		}
	}
	scratch := map[string]*head{}
	n, skipped := 0, 0
	profiles := func(seg, i int, tenantID string, payload []byte) error {
		t := db.tenant(tenantID)
		if seg < t.cpSegment {
			skipped++
			return nil
		}
		inputs, err := db.opts.Decode(payload)
		if err != nil {
			return fmt.Errorf("decode wal record %d: %w", i, err)
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
	}
	lastSeg, i := -1, 0 // i numbers the records of segment lastSeg from 0
	err := db.wal.Replay(0, func(seg int, rec []byte) error {
		if seg != lastSeg {
			lastSeg, i = seg, 0
		}
		defer func() { i++ }()
		typ, tenantID, payload, err := decodeRecord(rec)
		if err != nil {
			return fmt.Errorf("wal record %d: %w", i, err)
		}
		switch typ {
		case recordProfiles:
			return profiles(seg, i, tenantID, payload)
		}
		return fmt.Errorf("wal record %d: this version of Hearth does not read records of type %v; was the log written by a newer one?", i, typ)
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
