package jsonl

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/events"
)

func FuzzDecode(f *testing.F) {
	f.Add([]byte(twoGoodOneBad))
	f.Add([]byte(`[{"name":"a","time":1793534400.5,"duration":"1s"},7,{"user":{"id":"u"}}]`))
	f.Add([]byte(`{"trace_id":"abc","span_id":"1","status":"error","kind":"server","tags":[1,{"a":null}]}`))
	lim := events.Limits{MaxAttributes: 4, MaxValueBytes: 8, MaxPerRequest: 50}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Decode(body, Options{Limits: lim, MaxLineBytes: 256, Now: now})
		if err != nil {
			return
		}
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '[' {
			lines := 0
			for _, l := range bytes.Split(body, []byte{'\n'}) {
				if len(bytes.TrimSpace(l)) > 0 {
					lines++
				}
			}
			if len(d.Events)+len(d.Refused) != lines {
				t.Fatalf("%d events and %d refused of %d lines", len(d.Events), len(d.Refused), lines)
			}
		}
		for _, e := range d.Events {
			if e.Duration < 0 || e.Service == "" || len(e.Attrs) > lim.MaxAttributes {
				t.Fatalf("bad event %+v", e)
			}
			for i := 1; i < len(e.Attrs); i++ {
				if e.Attrs[i-1].Key >= e.Attrs[i].Key {
					t.Fatalf("attributes not sorted and unique: %+v", e.Attrs)
				}
			}
		}
		if len(d.Events) == 0 {
			return
		}
		back, err := events.Decode(events.AppendEncoded(nil, d.Events))
		if err != nil {
			t.Fatalf("decoded events do not survive the log layout: %v", err)
		}
		if diff := cmp.Diff(d.Events, back); diff != "" {
			t.Fatalf("decoded events change through the log layout:\n%s", diff)
		}
	})
}
