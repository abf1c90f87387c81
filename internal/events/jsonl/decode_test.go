package jsonl

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/events"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func mustTrace(s string) events.TraceID {
	id, err := events.ParseTraceID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func mustSpan(s string) events.SpanID {
	id, err := events.ParseSpanID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func str(k, v string) events.Attr { return events.Attr{Key: k, Value: events.String(v)} }

func TestDecodeMapping(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 123456789, time.UTC).UnixNano()
	for _, tc := range []struct {
		name string
		line string
		want events.Event
	}{
		{
			name: "everything",
			line: `{"time":"2026-11-01T12:00:00.123456789Z","name":"POST /cart","duration_ms":412.5,"service.name":"shop",
				"trace.trace_id":"5b8efff798038103d269b633813fc60c","trace.span_id":"eee19b7ec3c1b174","trace.parent_id":"eee19b7ec3c1b173",
				"kind":"Server","error":"card declined","user":{"id":"u-7","plan":{"tier":2}},"items":3,"total":41.5,"beta":true,
				"tags":["a", 1],"gone":null,"status":502}`,
			want: events.Event{
				Start: at, Duration: 412_500_000, Service: "shop", Name: "POST /cart",
				TraceID: mustTrace("5b8efff798038103d269b633813fc60c"), SpanID: mustSpan("eee19b7ec3c1b174"), ParentID: mustSpan("eee19b7ec3c1b173"),
				Kind: events.KindServer, Status: events.StatusError, StatusMessage: "card declined",
				Attrs: []events.Attr{
					{Key: "span.beta", Value: events.Bool(true)},
					{Key: "span.items", Value: events.Int(3)},
					{Key: "span.status", Value: events.Int(502)},
					str("span.tags", `["a",1]`),
					{Key: "span.total", Value: events.Float(41.5)},
					str("span.user.id", "u-7"),
					{Key: "span.user.plan.tier", Value: events.Int(2)},
				},
			},
		},
		{
			name: "nothing but a message: now, unknown_service",
			line: `{"msg":"hello"}`,
			want: events.Event{Start: now.UnixNano(), Service: "unknown_service", Attrs: []events.Attr{str("span.msg", "hello")}},
		},
		{
			name: "plain aliases, nested service, Unix seconds with a fraction",
			line: `{"time":1793534400.25,"service":{"name":"cron"},"trace_id":"abc","span_id":"1","parent_id":"2","duration":"1.5s","status":"OK"}`,
			want: events.Event{Start: 1793534400_250_000_000, Duration: 1_500_000_000, Service: "cron",
				TraceID: mustTrace("abc"), SpanID: mustSpan("01"), ParentID: mustSpan("02"), Status: events.StatusOK},
		},
		{
			name: "service_name, Unix milliseconds, duration as a number of ms",
			line: `{"time":1793534400123,"service_name":"api","duration":7}`,
			want: events.Event{Start: 1793534400_123_000_000, Duration: 7_000_000, Service: "api"},
		},
		{
			name: "Unix microseconds and nanoseconds",
			line: `{"time":1793534400123456,"t2":1}`,
			want: events.Event{Start: 1793534400_123_456_000, Service: "unknown_service", Attrs: []events.Attr{{Key: "span.t2", Value: events.Int(1)}}},
		},
		{
			name: "Unix nanoseconds",
			line: `{"time":1793534400123456789}`,
			want: events.Event{Start: 1793534400_123_456_789, Service: "unknown_service"},
		},
		{
			name: "scoped fields keep their scope; error true; a kind that is no kind",
			line: `{"resource.host.name":"web-1","span.http.route":"/x","error":true,"kind":"batch","big":18446744073709551616,"exp":1e3}`,
			want: events.Event{Start: now.UnixNano(), Service: "unknown_service", Status: events.StatusError,
				Attrs: []events.Attr{
					str("resource.host.name", "web-1"),
					{Key: "span.big", Value: events.Float(18446744073709551616)},
					{Key: "span.exp", Value: events.Float(1000)},
					str("span.http.route", "/x"),
					str("span.kind", "batch"),
				}},
		},
		{
			name: "a field given twice keeps its last value; error false says nothing",
			line: `{"a":1,"a":"two","error":false,"error_code":0}`,
			want: events.Event{Start: now.UnixNano(), Service: "unknown_service",
				Attrs: []events.Attr{str("span.a", "two"), {Key: "span.error_code", Value: events.Int(0)}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The table writes long lines over several; a line is one line.
			d, err := Decode([]byte(strings.ReplaceAll(tc.line, "\n", "")), Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Refused) != 0 || len(d.Events) != 1 {
				t.Fatalf("refused %+v, %d events", d.Refused, len(d.Events))
			}
			if diff := cmp.Diff(tc.want, d.Events[0]); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRefusesLines(t *testing.T) {
	body := strings.Join([]string{
		`{"name":"ok 1"}`,
		``,
		`not json`,
		`[1,2]`,
		`{"time":"yesterday"}`,
		`{"time":-5}`,
		`{"time":1e30}`,
		`{"trace_id":"xyz"}`,
		`{"span_id":"00112233445566778899"}`,
		`{"duration_ms":-1}`,
		`{"duration":"soon"}`,
		`{"duration_ms":"12"}`,
		`{"a":1} {"b":2}`,
		`{"":1}`,
		`{"time":"1969-12-31T23:59:59Z"}`,
		`{"name":"ok 2"}`,
	}, "\r\n")
	d, err := Decode([]byte(body), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Events) != 2 || d.Events[0].Name != "ok 1" || d.Events[1].Name != "ok 2" {
		t.Errorf("events %+v, want the two good lines", d.Events)
	}
	want := []Refusal{
		{Line: 3, Error: "invalid character 'o' in literal null (expecting 'u')"},
		{Line: 4, Error: "not a JSON object: each line must be one object"},
		{Line: 5, Error: `time: "yesterday" is not an RFC 3339 time such as 2026-11-01T12:00:00.123Z`},
		{Line: 6, Error: "time: -5 is not a Unix time: want a positive number of seconds, milliseconds, microseconds or nanoseconds"},
		{Line: 7, Error: "time: 1e30 is past the year 2262, the last time Hearth keeps"},
		{Line: 8, Error: `trace_id: trace ID "xyz": not hex`},
		{Line: 9, Error: `span_id: span ID "00112233445566778899": want 1 to 16 hex digits`},
		{Line: 10, Error: "duration_ms: -1 is not a duration in milliseconds: want a number from 0"},
		{Line: 11, Error: `duration: "soon" is not a duration such as 412ms or 1.5s`},
		{Line: 12, Error: "duration_ms: want a number of milliseconds, not a string"},
		{Line: 13, Error: "more after the object: each line must be one object"},
		{Line: 14, Error: "a field without a name"},
		{Line: 15, Error: `time: "1969-12-31T23:59:59Z" is outside the times Hearth keeps, 1970 to 2262`},
	}
	if diff := cmp.Diff(want, d.Refused); diff != "" {
		t.Errorf("refusals (-want +got):\n%s", diff)
	}
}

func TestDecodeArray(t *testing.T) {
	body := ` [ {"name":"a","time":1793534400}, 7, {"name":"c","time":"bad"}, {"name":"d"} ] `
	d, err := Decode([]byte(body), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Events) != 2 || d.Events[0].Name != "a" || d.Events[0].Start != 1793534400e9 || d.Events[1].Name != "d" {
		t.Errorf("events %+v", d.Events)
	}
	one, two := 1, 2
	want := []Refusal{
		{Index: &one, Error: "not a JSON object: each line must be one object"},
		{Index: &two, Error: `time: "bad" is not an RFC 3339 time such as 2026-11-01T12:00:00.123Z`},
	}
	if diff := cmp.Diff(want, d.Refused); diff != "" {
		t.Errorf("refusals (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`[{"a":1}`, `[{"a":1}] [`, `[{"a":1},,]`} {
		if _, err := Decode([]byte(bad), Options{Now: now}); err == nil {
			t.Errorf("Decode(%s) took a broken array", bad)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	lines := `{"a":1}` + "\n" + `{"a":2}` + "\n" + `{"a":3}`
	if _, err := Decode([]byte(lines), Options{Limits: events.Limits{MaxPerRequest: 2}}); err == nil || !strings.Contains(err.Error(), "over the limit of 2 per request") {
		t.Errorf("3 lines over a limit of 2: %v", err)
	}
	if _, err := Decode([]byte("["+strings.ReplaceAll(lines, "\n", ",")+"]"), Options{Limits: events.Limits{MaxPerRequest: 2}}); err == nil {
		t.Errorf("an array of 3 over a limit of 2 was taken")
	}
	d, err := Decode([]byte(`{"name":"a very long name","x":"0123456789","y":1,"z":2}`+"\n"+`{"long":"`+strings.Repeat("x", 100)+`"}`),
		Options{Limits: events.Limits{MaxAttributes: 2, MaxValueBytes: 6}, MaxLineBytes: 90})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Events) != 1 || d.Events[0].Name != "a very" || len(d.Events[0].Attrs) != 2 || d.Events[0].Attrs[0].Value.Str != "012345" {
		t.Errorf("events %+v", d.Events)
	}
	if d.Cut != (events.Cut{Attributes: 1, Values: 2}) {
		t.Errorf("cut %+v", d.Cut)
	}
	if len(d.Refused) != 1 || d.Refused[0].Line != 2 || d.Refused[0].Error != "111 bytes, over the limit of 90" {
		t.Errorf("refused %+v", d.Refused)
	}
}

func TestDecodeDeepObject(t *testing.T) {
	line := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	d, err := Decode([]byte(line), Options{Now: now})
	if err != nil || len(d.Events) != 1 {
		t.Fatalf("%v, %+v", err, d)
	}
	a := d.Events[0].Attrs
	// 16 levels flattened, the rest kept as text.
	wantKey := "span." + strings.TrimSuffix(strings.Repeat("a.", 17), ".")
	if len(a) != 1 || a[0].Key != wantKey || a[0].Value.Str != strings.Repeat(`{"a":`, 23)+"1"+strings.Repeat("}", 23) {
		t.Errorf("attrs %+v", a)
	}
}
