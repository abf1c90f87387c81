package storage

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/hearth-profiler/hearth/internal/events"
)

// replay applies the log. A tenant's records below its checkpoint segment
// are skipped; those from there up to the segment of its newest block are
// in blocks already and only rebuild the delta state (a crash came between
// a block and its checkpoint); the rest go into the head.
//
// Decoding a record (gunzip and pprof parsing) is most of replay's time
// and needs nothing of the others, so records are decoded on every core;
// they are applied one at a time in log order, which cumulative deltas
// depend on.
//
// A record of a type this version does not know fails the replay, and so
// Open: it was written by a newer Hearth, and its types to come
// (deletions) would bring deleted data back if it were
// skipped, for good once a head cut truncated the log beneath it.
func (db *DB) replay() error {
	blockSeg := map[string]int{}
	for id, t := range db.tenants {
		for _, b := range t.blocks {
			if seg, ok := db.logSegment(b); ok {
				blockSeg[id] = max(blockSeg[id], seg)
			}
		}
	}

	// A job is one record on its way: decoded by a worker, applied by the
	// applier once every record before it was.
	type job struct {
		seg, i  int
		typ     recordType
		t       *tenant
		h       *head
		payload []byte
		inputs  []*Input
		events  []events.Event
		err     error
		decoded chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	toDecode := make(chan *job, 2*workers)
	toApply := make(chan *job, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range toDecode {
				if j.typ == recordEvents {
					j.events, j.err = events.Decode(j.payload)
				} else {
					j.inputs, j.err = db.opts.Decode(j.payload)
				}
				j.payload = nil
				close(j.decoded)
			}
		})
	}
	var (
		applied  int
		applyErr error
		failed   = make(chan struct{}) // closed when applyErr is set
	)
	applierDone := make(chan struct{})
	go func() {
		defer close(applierDone)
		for j := range toApply {
			<-j.decoded
			if applyErr != nil {
				continue // drain, so that the reader never blocks
			}
			if j.err != nil {
				applyErr = fmt.Errorf("decode wal record %d of segment %d: %w", j.i, j.seg, j.err)
				close(failed)
				continue
			}
			j.t.mu.Lock()
			for _, in := range j.inputs {
				j.t.apply(j.h, in)
			}
			j.h.ev.append(j.events)
			j.t.mu.Unlock()
			applied++
		}
	}()

	scratch := map[string]*head{}
	skipped := 0
	lastSeg, i := -1, 0 // i numbers the records of segment lastSeg from 0
	err := db.wal.Replay(0, func(seg int, rec []byte) error {
		select {
		case <-failed:
			return errStopReplay
		default:
		}
		if seg != lastSeg {
			lastSeg, i = seg, 0
		}
		defer func() { i++ }()
		typ, tenantID, payload, err := decodeRecord(rec)
		if err != nil {
			return fmt.Errorf("wal record %d: %w", i, err)
		}
		if typ != recordProfiles && typ != recordEvents {
			return fmt.Errorf("wal record %d: this version of Hearth does not read records of type %v; was the log written by a newer one?", i, typ)
		}
		t := db.tenant(tenantID)
		if seg < t.cpSegment {
			skipped++
			return nil
		}
		h := t.head
		if seg < blockSeg[tenantID] && typ == recordEvents {
			// In a block already, and events leave no state to rebuild.
			skipped++
			return nil
		}
		if seg < blockSeg[tenantID] {
			if h = scratch[tenantID]; h == nil {
				h = newHead()
				scratch[tenantID] = h
			}
			skipped++
		}
		// The log reuses rec for the next record.
		j := &job{seg: seg, i: i, typ: typ, t: t, h: h, payload: bytes.Clone(payload), decoded: make(chan struct{})}
		toApply <- j
		toDecode <- j
		return nil
	})
	close(toDecode)
	close(toApply)
	wg.Wait()
	<-applierDone
	if applyErr != nil {
		return applyErr
	}
	if err != nil {
		return err
	}
	now := db.opts.Now()
	for _, t := range db.tenants {
		t.lastAppend = now
	}
	db.logger.Info("wal replayed", "records", applied, "skipped", skipped, "tenants", len(db.tenants))
	return nil
}

// errStopReplay stops reading the log once applying failed; the applier's
// error is the one returned.
var errStopReplay = errors.New("replay stopped")
