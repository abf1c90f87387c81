package events

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleEvents() []Event {
	tid, _ := ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := ParseSpanID("00f067aa0ba902b7")
	pid, _ := ParseSpanID("53995c3f42cd8ad8")
	return []Event{
		{
			Start: 1_700_000_000_123_456_789, Duration: 412_000_000,
			TraceID: tid, SpanID: sid, ParentID: pid,
			Service: "shop", Name: "POST /checkout", Kind: KindServer,
			Status: StatusError, StatusMessage: "card declined",
			Attrs: []Attr{
				{Key: "resource.host.name", Value: String("web-1")},
				{Key: "span.http.response.status_code", Value: Int(502)},
				{Key: "span.http.route", Value: String("/checkout")},
				{Key: "span.ratio", Value: Float(-0.25)},
				{Key: "span.retry", Value: Bool(true)},
			},
			SpanEvents: []SpanEvent{{Time: 1_700_000_000_200_000_000, Name: "exception",
				Attrs: []Attr{{Key: "exception.message", Value: String("card declined")}}}},
			Links: []Link{{TraceID: tid, SpanID: pid, Attrs: []Attr{{Key: "why", Value: String("batch")}}}},
		},
		{Start: -5, Name: "log", Attrs: []Attr{{Key: "span.body", Value: String("")}}},
		{},
	}
}

func TestEncodeDecode(t *testing.T) {
	in := sampleEvents()
	b := AppendEncoded([]byte("prefix"), in)
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("AppendEncoded lost what b held")
	}
	out, err := Decode(b[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in, out); d != "" {
		t.Errorf("decoded batch differs (-sent +decoded):\n%s", d)
	}
	if out, err := Decode(AppendEncoded(nil, nil)); err != nil || len(out) != 0 {
		t.Errorf("empty batch: %v, %v", out, err)
	}
}

// manyEvents are spans whose user IDs are all new, which the encoder
// writes in place, and whose routes repeat, which it interns.
func manyEvents() []Event {
	var evs []Event
	for i := range 100 {
		evs = append(evs, Event{Start: int64(i), Service: "shop", Name: "GET", Attrs: []Attr{
			{Key: "span.http.route", Value: String([]string{"/a", "/b", "/c"}[i%3])},
			{Key: "span.user.id", Value: String(fmt.Sprintf("u-%d", i))},
			{Key: "span.n", Value: Int(int64(i))},
		}})
	}
	return evs
}

func TestEncodeInlinesNewValues(t *testing.T) {
	in := manyEvents()
	b := AppendEncoded(nil, in)
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in, out); d != "" {
		t.Fatalf("round trip (-sent +decoded):\n%s", d)
	}
	if n := bytes.Count(b, []byte{inlineString}); n < 50 {
		t.Errorf("%d values written in place; the user IDs, all new, should be", n)
	}
	// Interned values are in the table once.
	if n := bytes.Count(b, []byte("/b")); n != 1 {
		t.Errorf("route /b written %d times", n)
	}
}

func TestDecodeRefusesDamage(t *testing.T) {
	good := AppendEncoded(nil, sampleEvents())
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty record"},
		{"version", append([]byte{9}, good[1:]...), "layout version 9"},
		{"truncated", good[:len(good)-3], "truncated"},
		{"trailing", append(append([]byte(nil), good...), 0), "after the last event"},
		{"huge count", []byte{codecVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "past the end"},
	} {
		_, err := Decode(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	// Every truncation of a good batch is refused, never a panic.
	for i := range good {
		if _, err := Decode(good[:i]); err == nil {
			t.Errorf("batch cut to %d of %d bytes decoded", i, len(good))
		}
	}
}

func TestNormalize(t *testing.T) {
	e := Event{Attrs: []Attr{
		{Key: "span.b", Value: Int(1)},
		{Key: "span.a", Value: Int(2)},
		{Key: "span.b", Value: Int(3)},
	}}
	e.Normalize()
	want := []Attr{{Key: "span.a", Value: Int(2)}, {Key: "span.b", Value: Int(3)}}
	if d := cmp.Diff(want, e.Attrs); d != "" {
		t.Errorf("Normalize (-want +got):\n%s", d)
	}
}

func TestParseIDs(t *testing.T) {
	id, err := ParseTraceID("abc")
	if err != nil || id.String() != "00000000000000000000000000000abc" {
		t.Errorf("ParseTraceID(abc) = %s, %v", id, err)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("a", 33)} {
		if _, err := ParseTraceID(bad); err == nil {
			t.Errorf("ParseTraceID(%q) took it", bad)
		}
	}
	sid, err := ParseSpanID("00f067aa0ba902b7")
	if err != nil || sid.String() != "00f067aa0ba902b7" {
		t.Errorf("ParseSpanID = %s, %v", sid, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendEncoded(nil, sampleEvents()))
	f.Add(AppendEncoded(nil, nil))
	f.Add(AppendEncoded(nil, manyEvents()[:40]))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes encodes to something that decodes to the same.
		again, err := Decode(AppendEncoded(nil, evs))
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if d := cmp.Diff(evs, again); d != "" {
			t.Fatalf("round trip differs:\n%s", d)
		}
	})
}
