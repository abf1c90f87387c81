package events

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestEnforce(t *testing.T) {
	lim := Limits{MaxAttributes: 3, MaxValueBytes: 5}
	e := Event{
		Name:          "a-long-name",
		StatusMessage: "ok",
		Attrs: []Attr{
			{Key: "resource.host.name", Value: String("web-1")},
			{Key: "span.z", Value: Int(1)},
			{Key: "span.z", Value: Int(2)}, // the same key again: counts once, last value kept
			{Key: "span.a", Value: String("héllo")},
			{Key: "span.b", Value: Bool(true)}, // the fourth key: dropped
			{Key: "span.c", Value: Int(3)},     // the fifth: dropped
			{Key: "span.b", Value: Bool(false)},
		},
		SpanEvents: []SpanEvent{{Name: "exception", Attrs: []Attr{{Key: "exception.message", Value: String("boom!!")}}}},
	}
	c := lim.Enforce(&e)
	if c != (Cut{Attributes: 2, Values: 4}) {
		t.Errorf("cut %+v, want 2 attributes and 4 values (the name, span.a, the span event's name and message)", c)
	}
	want := []Attr{
		{Key: "resource.host.name", Value: String("web-1")},
		// "héllo" is 6 bytes; 5 would split the é: cut to "héll".
		{Key: "span.a", Value: String("héll")},
		{Key: "span.z", Value: Int(2)},
	}
	if d := cmp.Diff(want, e.Attrs); d != "" {
		t.Errorf("attrs (-want +got):\n%s", d)
	}
	if e.Name != "a-lon" || e.StatusMessage != "ok" {
		t.Errorf("name %q, status message %q", e.Name, e.StatusMessage)
	}
	if se := e.SpanEvents[0]; se.Name != "excep" || se.Attrs[0].Value.Str != "boom!" {
		t.Errorf("span event %+v", se)
	}
}

func TestEnforceUnderLimits(t *testing.T) {
	e := Event{Name: "GET /", Attrs: []Attr{{Key: "span.b", Value: Int(1)}, {Key: "span.a", Value: String("x")}, {Key: "span.b", Value: Int(2)}}}
	if c := DefaultLimits().Enforce(&e); c.Any() {
		t.Errorf("cut %+v under the limits", c)
	}
	want := []Attr{{Key: "span.a", Value: String("x")}, {Key: "span.b", Value: Int(2)}}
	if d := cmp.Diff(want, e.Attrs); d != "" {
		t.Errorf("attrs not normalized (-want +got):\n%s", d)
	}
}

func TestCutStringKeepsUTF8(t *testing.T) {
	s := strings.Repeat("日本", 10) // 3 bytes a character
	for n := 1; n < len(s); n++ {
		var c Cut
		got := Limits{MaxValueBytes: n}.cutString(s, &c)
		if len(got) > n || !utf8.ValidString(got) || !strings.HasPrefix(s, got) || len(got) < n-2 {
			t.Fatalf("cut to %d: %q (%d bytes)", n, got, len(got))
		}
	}
}
