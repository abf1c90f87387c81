package events

import "sync/atomic"

// Tally counts what the ways in of events did, for the server's metrics.
// It is safe for concurrent use; a nil *Tally counts nothing.
type Tally struct {
	stored, refused, failed, attrsDropped, valuesCut atomic.Uint64
}

// Counts are a Tally's running totals.
type Counts struct {
	// Stored is the events stored, Refused those refused as bad input
	// (bad IDs, times, lines), Failed those not stored because storage
	// failed.
	Stored, Refused, Failed uint64
	// AttributesDropped and ValuesCut are what Limits cut from stored
	// events.
	AttributesDropped, ValuesCut uint64
}

// Stored counts n events stored, of which c was cut.
func (t *Tally) Stored(n int, c Cut) {
	if t == nil {
		return
	}
	t.stored.Add(uint64(n))
	t.attrsDropped.Add(uint64(c.Attributes))
	t.valuesCut.Add(uint64(c.Values))
}

// Refused counts n events refused.
func (t *Tally) Refused(n int) {
	if t != nil {
		t.refused.Add(uint64(n))
	}
}

// Failed counts n events not stored because storage failed.
func (t *Tally) Failed(n int) {
	if t != nil {
		t.failed.Add(uint64(n))
	}
}

// Counts returns the running totals.
func (t *Tally) Counts() Counts {
	if t == nil {
		return Counts{}
	}
	return Counts{Stored: t.stored.Load(), Refused: t.refused.Load(), Failed: t.failed.Load(),
		AttributesDropped: t.attrsDropped.Load(), ValuesCut: t.valuesCut.Load()}
}
