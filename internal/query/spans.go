package query

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// The per-sample labels that name a sample's span and its local root
// span: Hearth's instrument package and otel-profiling-go write span_id in
// hex; Datadog's tracers write "span id" and "local root span id" in
// decimal.
var (
	spanLabels = []string{"span_id", "local_root_span_id", "span id", "local root span id"}
)

// SpanSelection is a profile query's span filter, resolved: the spans of
// the events store that the filter selects in the query's range. A sample
// counts when its span or its local root span is one of them.
type SpanSelection struct {
	// Filter is the event filter as given.
	Filter string `json:"filter"`
	// Spans is how many spans matched.
	Spans int `json:"spans"`
	// IDs are the matching spans' IDs.
	IDs map[[8]byte]struct{} `json:"-"`
}

// keep says whether a per-sample label set names a selected span.
func (s *SpanSelection) keep(set labels.Labels) bool {
	for _, name := range spanLabels {
		v := set.Get(name)
		if v == "" {
			continue
		}
		if id, ok := parseSpanID(v); ok {
			if _, ok := s.IDs[id]; ok {
				return true
			}
		}
	}
	return false
}

// parseSpanID reads a span ID as 16 hex digits or as a decimal uint64.
func parseSpanID(s string) ([8]byte, bool) {
	var id [8]byte
	if len(s) == 16 {
		if _, err := hex.Decode(id[:], []byte(s)); err == nil {
			return id, true
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return id, false
	}
	for i := 7; i >= 0; i-- {
		id[i] = byte(n)
		n >>= 8
	}
	return id, true
}

// SpanValues are the selected samples summed by the span that took them.
type SpanValues struct {
	// BySpan is each span's own samples (span_id, or Datadog's "span
	// id"); Unattributed the samples without a span.
	BySpan       map[[8]byte]int64
	Unattributed int64
	Unit         string
}

// SpanValues sums r's samples, after its stack filters, by the span that
// took them: with focus=FUNCTION, the time each span spent in FUNCTION.
func (e *Engine) SpanValues(ctx context.Context, r Request) (*SpanValues, error) {
	svs, typ, err := e.selectOneType(ctx, r, newBudget(r.Limits))
	if err != nil {
		return nil, err
	}
	out := &SpanValues{BySpan: map[[8]byte]int64{}, Unit: unitOf(typ)}
	for _, sv := range svs {
		for _, v := range sv.Values {
			out.Unattributed += v
		}
		ids := make([]*[8]byte, len(sv.Sets)) // per set: its span, parsed once
		parsed := make([]bool, len(sv.Sets))
		for ls, v := range sv.Labeled {
			if !parsed[ls.Set] {
				parsed[ls.Set] = true
				for _, name := range []string{"span_id", "span id"} {
					if id, ok := parseSpanID(sv.Sets[ls.Set].Get(name)); ok {
						ids[ls.Set] = &id
						break
					}
				}
			}
			if id := ids[ls.Set]; id != nil {
				out.BySpan[*id] += v
			} else {
				out.Unattributed += v
			}
		}
	}
	return out, nil
}
