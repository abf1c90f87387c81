package otlp

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/hearth-profiler/hearth/internal/events"
)

// fuzzLimits are small, so that fuzzing reaches the cuts.
var fuzzLimits = events.Limits{MaxAttributes: 4, MaxValueBytes: 8}

// checkConverted checks what any request converts to: every item stored
// or refused, events within the limits and sorted, and events that the
// log layout keeps as they are.
func checkConverted(t *testing.T, cv converted, items int, spans bool) {
	t.Helper()
	if len(cv.events)+len(cv.refused) != items || cv.total != items {
		t.Fatalf("%d events and %d refused of %d items (total %d)", len(cv.events), len(cv.refused), items, cv.total)
	}
	for _, e := range cv.events {
		if spans && (e.TraceID.IsZero() || e.SpanID.IsZero() || e.Duration < 0 || e.Start <= 0) {
			t.Fatalf("span event without IDs or with a bad time: %+v", e)
		}
		if len(e.Attrs) > fuzzLimits.MaxAttributes || len(e.Name) > fuzzLimits.MaxValueBytes {
			t.Fatalf("event over the limits: %+v", e)
		}
		for i, a := range e.Attrs {
			if i > 0 && e.Attrs[i-1].Key >= a.Key {
				t.Fatalf("attributes not sorted and unique: %+v", e.Attrs)
			}
			if a.Value.Type == events.TypeString && len(a.Value.Str) > fuzzLimits.MaxValueBytes {
				t.Fatalf("value over the limit: %+v", a)
			}
		}
	}
	back, err := events.Decode(events.AppendEncoded(nil, cv.events))
	if err != nil {
		t.Fatalf("converted events do not decode from the log layout: %v", err)
	}
	if len(cv.events) == 0 {
		return // Decode gives nil or empty
	}
	if d := cmp.Diff(cv.events, back); d != "" {
		t.Fatalf("converted events change through the log layout:\n%s", d)
	}
}

// marshal returns the protobuf or JSON of an export request.
func marshal(f *testing.F, req interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}, json bool) []byte {
	var b []byte
	var err error
	if json {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func fuzzTraces(f *testing.F, json bool) {
	f.Add(marshal(f, ptraceotlp.NewExportRequestFromTraces(exampleTraces()), json))
	f.Add(marshal(f, ptraceotlp.NewExportRequestFromTraces(badSpans()), json))
	f.Fuzz(func(t *testing.T, data []byte) {
		req := ptraceotlp.NewExportRequest()
		var err error
		if json {
			err = req.UnmarshalJSON(data)
		} else {
			err = req.UnmarshalProto(data)
		}
		if err != nil {
			return
		}
		checkConverted(t, convertTraces(req.Traces(), fuzzLimits), req.Traces().SpanCount(), true)
	})
}

func fuzzLogs(f *testing.F, json bool) {
	f.Add(marshal(f, plogotlp.NewExportRequestFromLogs(exampleLogs()), json))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := plogotlp.NewExportRequest()
		var err error
		if json {
			err = req.UnmarshalJSON(data)
		} else {
			err = req.UnmarshalProto(data)
		}
		if err != nil {
			return
		}
		checkConverted(t, convertLogs(req.Logs(), fuzzLimits, now), req.Logs().LogRecordCount(), false)
	})
}

func FuzzTracesProto(f *testing.F) { fuzzTraces(f, false) }
func FuzzTracesJSON(f *testing.F)  { fuzzTraces(f, true) }
func FuzzLogsProto(f *testing.F)   { fuzzLogs(f, false) }
func FuzzLogsJSON(f *testing.F)    { fuzzLogs(f, true) }
