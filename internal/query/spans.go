package query

import (
	"context"
	"encoding/binary"

	"github.com/hearth-profiler/hearth/internal/storage"
)

// SpanSelection is a profile query's span filter, resolved: the spans of
// the events store that the filter selects in the query's range. A sample
// counts when its span or its local root span is one of them.
type SpanSelection struct {
	// Filter is the event filter as given.
	Filter string `json:"filter"`
	// Spans is how many spans matched.
	Spans int `json:"spans"`
	// IDs are the matching spans' IDs, as storage.SpanRef holds them.
	IDs SpanIDs `json:"-"`
	// Traces, when set, keeps the samples of these traces too.
	Traces map[[16]byte]struct{} `json:"-"`
}

// keep says whether a request is, or runs under, a selected span, or is
// part of a selected trace.
func (s *SpanSelection) keep(r storage.SpanRef) bool {
	if s.IDs.Has(r.Span) || s.IDs.Has(r.Root) {
		return true
	}
	if len(s.Traces) > 0 && r.Trace != ([16]byte{}) {
		_, ok := s.Traces[r.Trace]
		return ok
	}
	return false
}

// SpanValues are the selected samples summed by the span that took them.
type SpanValues struct {
	// BySpan is each span's own samples; Unattributed the samples
	// without a span.
	BySpan       map[[8]byte]int64
	Unattributed int64
	Unit         string
}

// SpanValues sums r's samples, after its stack filters, by the span that
// took them: with focus=FUNCTION, the time each span spent in FUNCTION.
func (e *Engine) SpanValues(ctx context.Context, r Request) (*SpanValues, error) {
	svs, typ, err := e.selectOneType(ctx, r, newBudget(r.Limits), storage.ApartSpans)
	if err != nil {
		return nil, err
	}
	out := &SpanValues{BySpan: map[[8]byte]int64{}, Unit: unitOf(typ)}
	for _, sv := range svs {
		for _, v := range sv.Values {
			out.Unattributed += v
		}
		for ls, v := range sv.Labeled {
			if id := sv.Spans[ls.Span].Span; id != 0 {
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], id)
				out.BySpan[k] += v
			} else {
				out.Unattributed += v
			}
		}
	}
	return out, nil
}
