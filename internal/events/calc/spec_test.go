package calc

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

func TestParseFields(t *testing.T) {
	tests := []struct {
		in    string
		names []string
		keys  [][]string // attribute keys read, per field
	}{
		{"", nil, nil},
		{"span.http.route", []string{"span.http.route"}, [][]string{{"span.http.route"}}},
		{" span.http.route , resource.service.version ", []string{"span.http.route", "resource.service.version"},
			[][]string{{"span.http.route"}, {"resource.service.version"}}},
		{".region", []string{".region"}, [][]string{{"span.region", "resource.region"}}},
		{"service,resource.service.name,span:name", []string{"resource.service.name", "name"}, [][]string{nil, nil}},
		{`span."http route",."a\"b"`, []string{`span."http route"`, `."a\"b"`},
			[][]string{{"span.http route"}, {`span.a"b`, `resource.a"b`}}},
		{"status,kind,statusMessage,duration,trace:id,span:id", []string{"status", "kind", "statusMessage", "duration", "trace:id", "span:id"},
			[][]string{nil, nil, nil, nil, nil, nil}},
	}
	for _, tt := range tests {
		fs, err := ParseFields(tt.in)
		if err != nil {
			t.Errorf("ParseFields(%q): %v", tt.in, err)
			continue
		}
		var names []string
		for i, f := range fs {
			names = append(names, f.String())
			if got := f.Columns().Attrs; !slices.Equal(got, tt.keys[i]) {
				t.Errorf("ParseFields(%q)[%d] reads %q, want %q", tt.in, i, got, tt.keys[i])
			}
		}
		if !slices.Equal(names, tt.names) {
			t.Errorf("ParseFields(%q) = %q, want %q", tt.in, names, tt.names)
		}
	}
}

func TestParseFieldsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http.route", `1:1: unknown field "http.route": attributes need a scope`},
		{"span.", "1:1: \"span.\": attribute name missing"},
		{"span.a,,span.b", "1:8: expected a field, found \",\""},
		{"span.a span.b", "1:8: expected , between fields"},
		{`span."abc`, "1:6: quoted name not closed"},
		{`span.""`, "1:1: empty attribute name"},
		{`foo."x"`, `1:1: "foo.": a quoted name follows a scope`},
		{"span.a,", "1:8: expected a field, found end of input"},
	}
	for _, tt := range tests {
		_, err := ParseFields(tt.in)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseFields(%q) = %v, want an error starting %q", tt.in, err, tt.want)
		}
		var qe *QueryError
		if !errors.As(err, &qe) || qe.Col == 0 {
			t.Errorf("ParseFields(%q): %v is not a QueryError with a column", tt.in, err)
		}
	}
}

func TestParseCalcs(t *testing.T) {
	cs, err := ParseCalcs("count, p99(duration),avg( duration ),COUNT(),p999(span.size),count_distinct(span.user.id),heatmap(duration),p5(.x),sum(span.bytes),min(duration),max(duration)")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.String())
	}
	want := []string{"count", "p99(duration)", "avg(duration)", "p999(span.size)", "count_distinct(span.user.id)", "heatmap(duration)", "p5(.x)", "sum(span.bytes)", "min(duration)", "max(duration)"}
	if !slices.Equal(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
	if cs[1].q != 0.99 || cs[3].q != 0.999 || cs[6].q != 0.05 {
		t.Errorf("quantiles: %v %v %v", cs[1].q, cs[3].q, cs[6].q)
	}
	units := map[string]string{}
	for _, c := range cs {
		units[c.String()] = c.Unit()
	}
	if units["p99(duration)"] != "ns" || units["count"] != "" || units["p999(span.size)"] != "" || units["heatmap(duration)"] != "ns" {
		t.Errorf("units: %v", units)
	}
	if cs, err := ParseCalcs(""); err != nil || cs != nil {
		t.Errorf("ParseCalcs(\"\") = %v, %v; want none", cs, err)
	}
}

func TestParseCalcsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"count,p98x(duration)", `1:7: unknown calculation "p98x"`},
		{"count,p100(duration)", `1:7: unknown calculation "p100"`},
		{"count,p0(duration)", `1:7: unknown calculation "p0"`},
		{"avg", "1:4: avg needs a field in parentheses"},
		{"avg(name)", "1:5: avg(name): name is not a number"},
		{"p99(status)", "1:5: p99(status): status is not a number"},
		{"count(duration)", "1:7: count takes no field"},
		{"sum(duration", "1:13: expected ) after sum(duration"},
		{"count p99(duration)", "1:7: expected , between calculations"},
		{"count,", "1:7: expected a calculation"},
		{"avg(span.x) extra", "1:13: expected , between calculations"},
	}
	for _, tt := range tests {
		_, err := ParseCalcs(tt.in)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseCalcs(%q) = %v, want an error starting %q", tt.in, err, tt.want)
		}
	}
	if c, err := ParseCalc("count_distinct(name)"); err != nil || c.String() != "count_distinct(name)" {
		t.Errorf("count_distinct of a string field: %v, %v", c, err)
	}
}

func TestParseOrder(t *testing.T) {
	for in, want := range map[string]string{
		"p99(duration)":       "p99(duration) desc",
		"count asc":           "count asc",
		" avg(duration) DESC": "avg(duration) desc",
	} {
		o, err := ParseOrder(in)
		if err != nil || o.String() != want {
			t.Errorf("ParseOrder(%q) = %v, %v; want %s", in, o, err, want)
		}
	}
	for in, want := range map[string]string{
		"count up":          `1:7: expected asc or desc after count, found "up"`,
		"heatmap(duration)": "1:1: cannot order by heatmap(duration)",
		"count asc x":       "1:11: unexpected",
	} {
		if _, err := ParseOrder(in); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseOrder(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestParseHaving(t *testing.T) {
	cs, err := ParseHaving("count > 10 && p99(duration) >= 500ms, avg(span.size)<1.5e3 and max(duration) != 0")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.String())
	}
	want := []string{"count > 10", "p99(duration) >= 500ms", "avg(span.size) < 1500", "max(duration) != 0"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if cs[1].Value != float64(500*time.Millisecond) {
		t.Errorf("500ms read as %v", cs[1].Value)
	}
	for in, want := range map[string]string{
		"p99(duration) > 500":    "1:17: p99(duration) is a duration: give \"500\" a unit",
		"count > 5ms":            `1:9: count is not a duration: compare it with a plain number, not "5ms"`,
		"count >":                "1:8: expected a number after the comparison on count",
		"count 10":               "1:7: expected a comparison",
		"count > ten":            `1:9: "ten" is not a number`,
		"heatmap(duration) > 1":  "1:1: having: heatmap(duration) is not a number",
		"count > 1 || count < 5": "1:11: expected && between conditions",
		"count > NaN":            `1:9: "NaN": want a finite number`,
	} {
		if _, err := ParseHaving(in); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseHaving(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestSpecQuery(t *testing.T) {
	q, err := Spec{By: "span.http.route", Calc: "count,p99(duration)", Having: "count > 1", Step: time.Minute, Limit: 5}.Query()
	if err != nil {
		t.Fatal(err)
	}
	if len(q.By) != 1 || len(q.Calcs) != 2 || len(q.Having) != 1 || q.Limit != 5 || q.order().String() != "count desc" {
		t.Errorf("query: %+v, order %s", q, q.order())
	}
	_, err = Spec{Calc: "count,p98x(duration)"}.Query()
	if err == nil || err.Error() != `calc: 1:7: unknown calculation "p98x": want one of `+calcHelp {
		t.Errorf("bad calc: %v", err)
	}
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Errorf("%v is not a QueryError", err)
	}
	if _, err := (Spec{Step: -time.Second}).Query(); err == nil || !strings.Contains(err.Error(), "step -1s") {
		t.Errorf("negative step: %v", err)
	}
	if _, err := (Spec{Examples: 11}).Query(); err == nil {
		t.Error("11 examples: no error")
	}
	q = Query{Calcs: []Calc{mustCalc(t, "heatmap(duration)"), mustCalc(t, "p50(duration)")}}
	if o := q.order(); o.String() != "p50(duration) desc" {
		t.Errorf("default order after a heatmap: %s", o)
	}
	q = Query{Calcs: []Calc{mustCalc(t, "heatmap(duration)")}}
	if o := q.order(); o.String() != "count desc" {
		t.Errorf("default order of heatmaps only: %s", o)
	}
}

func mustCalc(t testing.TB, s string) Calc {
	t.Helper()
	c, err := ParseCalc(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustField(t testing.TB, s string) Field {
	t.Helper()
	f, err := ParseField(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFieldColumns(t *testing.T) {
	for in, want := range map[string]events.Intrinsic{
		"duration":              events.ColDuration,
		"service":               events.ColService,
		"resource.service.name": events.ColService,
		".service.name":         events.ColService,
		"trace:id":              events.ColTraceID,
		"span.x":                0,
	} {
		if got := mustField(t, in).Columns().Intrinsics; got != want {
			t.Errorf("%s reads intrinsics %b, want %b", in, got, want)
		}
	}
}

// FuzzSpec checks that the spec parsers never panic, that what they
// refuse they refuse with a column inside the input, and that what they
// accept prints as text they read back the same.
func FuzzSpec(f *testing.F) {
	for _, s := range []string{
		"count,p99(duration),avg(duration)", "span.http.route,resource.service.version",
		`span."a b",."x\"y"`, "count > 10 && p99(duration) > 500ms", "p999(span.size) asc",
		"count_distinct(trace:id)", "heatmap(.x)", "avg(span.x) <= -1.5e-3, count != 0",
		"count and", "p9(", `span."\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(what string, err error, print func() (string, error)) {
			if err != nil {
				var qe *QueryError
				if !errors.As(err, &qe) || qe.Col < 1 || qe.Col > len(s)+1 {
					t.Fatalf("%s(%q): %v: not a QueryError with a column in 1..%d", what, s, err, len(s)+1)
				}
				return
			}
			again, err := print()
			if err != nil {
				t.Fatalf("%s(%q) prints as text that does not read back: %v", what, s, err)
			}
			_ = again
		}
		fs, err := ParseFields(s)
		check("ParseFields", err, func() (string, error) {
			text := joinStrings(fs)
			fs2, err := ParseFields(text)
			if err == nil && joinStrings(fs2) != text {
				t.Fatalf("ParseFields(%q) prints %q, which reads back as %q", s, text, joinStrings(fs2))
			}
			return text, err
		})
		cs, err := ParseCalcs(s)
		check("ParseCalcs", err, func() (string, error) {
			text := joinStrings(cs)
			cs2, err := ParseCalcs(text)
			if err == nil && joinStrings(cs2) != text {
				t.Fatalf("ParseCalcs(%q) prints %q, which reads back as %q", s, text, joinStrings(cs2))
			}
			return text, err
		})
		hs, err := ParseHaving(s)
		check("ParseHaving", err, func() (string, error) {
			text := joinStrings(hs)
			hs2, err := ParseHaving(text)
			if err == nil && joinStrings(hs2) != text {
				t.Fatalf("ParseHaving(%q) prints %q, which reads back as %q", s, text, joinStrings(hs2))
			}
			return text, err
		})
		o, err := ParseOrder(s)
		check("ParseOrder", err, func() (string, error) {
			if o.Calc.String() == "" {
				return "", nil
			}
			o2, err := ParseOrder(o.String())
			if err == nil && o2.String() != o.String() {
				t.Fatalf("ParseOrder(%q) prints %q, which reads back as %q", s, o, o2)
			}
			return o.String(), err
		})
	})
}

func joinStrings[T interface{ String() string }](xs []T) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x.String())
	}
	return b.String()
}
