package storage

import "fmt"

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
