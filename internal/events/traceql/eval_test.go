package traceql

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

func mustTraceID(s string) events.TraceID {
	id, err := events.ParseTraceID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func mustSpanID(s string) events.SpanID {
	id, err := events.ParseSpanID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// sample is a batch's worth of events covering the cases the rules
// distinguish: attributes of every type, the same key with different
// types, absent attributes, span attributes shadowing resource ones, an
// event without a service.
var sample = []events.Event{
	0: {Service: "checkout", Name: "GET /cart", Duration: int64(100 * time.Millisecond), Status: events.StatusOK, Kind: events.KindServer,
		TraceID: mustTraceID("4bf92f3577b34da6a3ce929d0e0e4736"), SpanID: mustSpanID("00f067aa0ba902b7"),
		Attrs: []events.Attr{
			{Key: "span.http.route", Value: events.String("/cart")},
			{Key: "span.code", Value: events.Int(200)},
			{Key: "span.flag", Value: events.Bool(true)},
			{Key: "span.ratio", Value: events.Float(0.5)},
			{Key: "resource.host.name", Value: events.String("h1")},
		}},
	1: {Service: "checkout", Name: "POST /cart", Duration: int64(700 * time.Millisecond), Status: events.StatusError, Kind: events.KindServer,
		StatusMessage: "card declined", TraceID: mustTraceID("abc"), SpanID: mustSpanID("1"), ParentID: mustSpanID("00f067aa0ba902b7"),
		Attrs: []events.Attr{
			{Key: "span.http.route", Value: events.String("/cart/add")},
			{Key: "span.code", Value: events.Int(500)},
			{Key: "span.flag", Value: events.Bool(false)},
			{Key: "resource.host.name", Value: events.String("h2")},
		}},
	2: {Service: "payment", Name: "charge", Duration: int64(1500 * time.Millisecond), Status: events.StatusError, Kind: events.KindClient,
		Attrs: []events.Attr{
			{Key: "span.code", Value: events.String("500")}, // a string where others have ints
			{Key: "span.ratio", Value: events.Int(2)},
			{Key: "resource.region", Value: events.String("eu-west-3")},
			{Key: "span.big", Value: events.Int(1<<53 + 1)},
		}},
	3: {Service: "payment", Name: "db", Duration: int64(5 * time.Millisecond), Kind: events.KindInternal,
		Attrs: []events.Attr{
			{Key: "resource.x", Value: events.String("res")},
			{Key: "span.ratio", Value: events.Float(math.NaN())},
		}},
	4: {Service: "", Name: "log line\nsecond line", Kind: events.KindUnspecified,
		Attrs: []events.Attr{
			{Key: "span.x", Value: events.String("span")},
			{Key: "resource.x", Value: events.String("res")},
		}},
	5: {Service: "frontend", Name: "render", Duration: int64(2 * time.Second), Kind: events.KindProducer, Status: events.StatusUnset,
		Attrs: []events.Attr{
			{Key: "span.service.name", Value: events.String("fake")},
			{Key: "span.x", Value: events.Int(5)},
			{Key: "resource.x", Value: events.String("res")},
			{Key: "span.my attr", Value: events.String("spaced")},
		}},
	6: {Service: "frontend", Name: "consume", Duration: 1, Kind: events.KindConsumer,
		Attrs: []events.Attr{
			{Key: "span.big", Value: events.Int(1 << 53)},
			{Key: "span.ratio", Value: events.Float(-1.5)},
		}},
}

// evalCases are filters and the rows of sample they match; each rule of
// the package documentation has cases here.
var evalCases = []struct {
	filter string
	want   []int
}{
	{`{ }`, []int{0, 1, 2, 3, 4, 5, 6}},
	{`{ true }`, []int{0, 1, 2, 3, 4, 5, 6}},
	{`{ false }`, nil},
	// The service is a column, not an attribute; an empty one is none.
	{`{ resource.service.name = "checkout" }`, []int{0, 1}},
	{`{ resource.service.name != "checkout" }`, []int{2, 3, 5, 6}},
	{`{ resource.service.name =~ "pay.*|front.*" }`, []int{2, 3, 5, 6}},
	{`{ resource.service.name !~ "c.*" }`, []int{2, 3, 5, 6}},
	{`{ resource.service.name < "d" }`, []int{0, 1}},
	{`{ resource.service.name = nil }`, []int{4}},
	{`{ resource.service.name != nil }`, []int{0, 1, 2, 3, 5, 6}},
	{`{ resource.service.name = "" }`, nil},
	// String intrinsics, every operator.
	{`{ name = "GET /cart" }`, []int{0}},
	{`{ span:name != "GET /cart" }`, []int{1, 2, 3, 4, 5, 6}},
	{`{ name < "c" }`, []int{0, 1}},
	{`{ name <= "charge" }`, []int{0, 1, 2}},
	{`{ name > "log" }`, []int{4, 5}},
	{`{ name >= "render" }`, []int{5}},
	{`{ name =~ ".*cart" }`, []int{0, 1}},
	{`{ name !~ ".*cart" }`, []int{2, 3, 4, 5, 6}},
	{`{ statusMessage = "card declined" }`, []int{1}},
	{`{ statusMessage = "" }`, []int{0, 2, 3, 4, 5, 6}},
	// Regular expressions are anchored and . matches newlines.
	{`{ name =~ "cart" }`, nil},
	{`{ name =~ "log.*" }`, []int{4}},
	{`{ name =~ "(?i)get /CART" }`, []int{0}},
	{`{ name =~ "GET /cart|db" }`, []int{0, 3}},
	{`{ name =~ ".*line" }`, []int{4}},
	{`{ name =~ ".*e.*" }`, []int{2, 4, 5, 6}},
	{`{ name =~ "[a-z]+" }`, []int{2, 3, 5, 6}},
	{`{ name =~ ".*" }`, []int{0, 1, 2, 3, 4, 5, 6}},
	// Duration, with durations and with bare numbers of nanoseconds.
	{`{ duration > 500ms }`, []int{1, 2, 5}},
	{`{ span:duration >= 700ms }`, []int{1, 2, 5}},
	{`{ duration < 5ms }`, []int{4, 6}},
	{`{ duration <= 5ms }`, []int{3, 4, 6}},
	{`{ duration = 1.5s }`, []int{2}},
	{`{ duration != 1.5s }`, []int{0, 1, 3, 4, 5, 6}},
	{`{ duration = 1 }`, []int{6}},
	{`{ duration > 0.5 && duration < 1.5 }`, []int{6}},
	{`{ duration = 0.5 }`, nil},
	{`{ duration != 0.5 }`, []int{0, 1, 2, 3, 4, 5, 6}},
	{`{ duration != nil }`, []int{0, 1, 2, 3, 4, 5, 6}},
	// Status and kind.
	{`{ status = error }`, []int{1, 2}},
	{`{ status != error }`, []int{0, 3, 4, 5, 6}},
	{`{ status = ok }`, []int{0}},
	{`{ span:status = unset }`, []int{3, 4, 5, 6}},
	{`{ kind = server }`, []int{0, 1}},
	{`{ kind = client || kind = internal || kind = unspecified || kind = producer || kind = consumer }`, []int{2, 3, 4, 5, 6}},
	{`{ span:kind != server }`, []int{2, 3, 4, 5, 6}},
	// IDs: = as IDs (short ones padded), =~ on the full-width hex.
	{`{ trace:id = "4bf92f3577b34da6a3ce929d0e0e4736" }`, []int{0}},
	{`{ trace:id = "0abc" }`, []int{1}},
	{`{ trace:id != "abc" }`, []int{0, 2, 3, 4, 5, 6}},
	{`{ trace:id =~ "4bf9.*" }`, []int{0}},
	{`{ trace:id =~ "abc" }`, nil},
	{`{ trace:id =~ "0+abc" }`, []int{1}},
	{`{ span:id = "00f067aa0ba902b7" }`, []int{0}},
	{`{ span:id = "1" }`, []int{1}},
	{`{ span:parentID = "00f067aa0ba902b7" }`, []int{1}},
	{`{ span:parentID = "0" }`, []int{0, 2, 3, 4, 5, 6}},
	{`{ span:parentID !~ "0+" }`, []int{1}},
	{`{ span:id =~ "0000000000000001|00f067aa0ba902b7" }`, []int{0, 1}},
	// A string literal matches string values only.
	{`{ span.http.route = "/cart" }`, []int{0}},
	{`{ span.http.route != "/cart" }`, []int{1}},
	{`{ span.http.route =~ "/cart.*" }`, []int{0, 1}},
	{`{ span.http.route !~ "/cart" }`, []int{1}},
	{`{ span.http.route > "/cart" }`, []int{1}},
	{`{ span.code = "500" }`, []int{2}},
	{`{ span.code != "500" }`, nil},
	{`{ span.code =~ "5.*" }`, []int{2}},
	// A number matches int and float values, numerically; never strings.
	{`{ span.code = 500 }`, []int{1}},
	{`{ span.code != 500 }`, []int{0}},
	{`{ span.code >= 200 }`, []int{0, 1}},
	{`{ span.code < 300 }`, []int{0}},
	{`{ span.code = 500.0 }`, []int{1}},
	{`{ span.code < 200.5 }`, []int{0}},
	{`{ span.code > 200.5 }`, []int{1}},
	{`{ span.code <= 199.5 }`, nil},
	{`{ span.ratio = 0.5 }`, []int{0}},
	{`{ span.ratio > 1 }`, []int{2}},
	{`{ span.ratio < 0 }`, []int{6}},
	{`{ span.ratio >= -1.5 }`, []int{0, 2, 6}},
	{`{ span.ratio = 2 }`, []int{2}},
	{`{ span.ratio = 2.0 }`, []int{2}},
	{`{ span.ratio != 2 }`, []int{0, 3, 6}},                       // NaN is unequal to everything
	{`{ span.ratio < 100 || span.ratio >= 100 }`, []int{0, 2, 6}}, // and unordered
	{`{ span.ratio > 1s }`, nil},                                  // a duration is its nanoseconds
	{`{ span.code > 100ns }`, []int{0, 1}},                        // and compares with numbers
	{`{ span.big = 9007199254740993 }`, []int{2}},                 // ints compare exactly
	{`{ span.big = 9007199254740992.0 }`, []int{6}},               // even with a float literal
	{`{ span.big > 9007199254740992.0 }`, []int{2}},               // past 2^53
	{`{ span.code < maxInt && span.code > minInt }`, []int{0, 1}}, // the extremes
	{`{ span.code < 1e300 && span.code > -1e300 }`, []int{0, 1}},  // and beyond them
	{`{ span.code > 1e300 || span.code < -1e300 }`, nil},          //
	{`{ span.code = 1e300 }`, nil},                                //
	{`{ span.code != 1e300 }`, []int{0, 1}},                       //
	{`{ span.http.route = 5 }`, nil},                              // string values never equal numbers
	{`{ span.http.route != 5 }`, nil},                             // nor differ from them
	{`{ span.flag = 1 }`, nil},                                    // nor do booleans
	// A boolean matches bool values.
	{`{ span.flag = true }`, []int{0}},
	{`{ span.flag = false }`, []int{1}},
	{`{ span.flag != true }`, []int{1}},
	{`{ span.flag != false }`, []int{0}},
	{`{ span.code = true }`, nil},
	// Absent attributes match nothing, != and !~ included; ! is plain not.
	{`{ span.nope = "x" }`, nil},
	{`{ span.nope != "x" }`, nil},
	{`{ span.nope !~ "x" }`, nil},
	{`{ span.nope != 1 }`, nil},
	{`{ span.nope = nil }`, []int{0, 1, 2, 3, 4, 5, 6}},
	{`{ span.nope != nil }`, nil},
	{`{ !(span.nope = "x") }`, []int{0, 1, 2, 3, 4, 5, 6}},
	{`{ span.http.route != nil }`, []int{0, 1}},
	{`{ span.http.route = nil }`, []int{2, 3, 4, 5, 6}},
	{`{ !(span.http.route = "/cart") }`, []int{1, 2, 3, 4, 5, 6}},
	{`{ span.code != nil }`, []int{0, 1, 2}},
	// Scopes are kept apart.
	{`{ resource.host.name = "h1" }`, []int{0}},
	{`{ span.host.name = "h1" }`, nil},
	{`{ resource.x = "res" }`, []int{3, 4, 5}},
	{`{ span.x = "res" }`, nil},
	{`{ span."my attr" = "spaced" }`, []int{5}},
	// Unscoped: the span attribute where there is one, else the resource's.
	{`{ .host.name = "h2" }`, []int{1}},
	{`{ .x = "res" }`, []int{3}},          // 4 and 5 have span.x, which shadows
	{`{ .x = "span" }`, []int{4}},         //
	{`{ .x = 5 }`, []int{5}},              // whatever its type
	{`{ .x != "res" }`, []int{4}},         // 5's span.x is an int
	{`{ .x != nil }`, []int{3, 4, 5}},     //
	{`{ .x = nil }`, []int{0, 1, 2, 6}},   //
	{`{ .x =~ "res|span" }`, []int{3, 4}}, //
	{`{ .service.name = "checkout" }`, []int{0, 1}},
	{`{ .service.name = "frontend" }`, []int{6}}, // 5's span.service.name shadows its service
	{`{ .service.name = "fake" }`, []int{5}},
	{`{ .service.name = nil }`, []int{4}},
	{`{ .service.name != nil }`, []int{0, 1, 2, 3, 5, 6}},
	{`{ .service.name = 1 }`, nil},
	{`{ .region = "eu-west-3" }`, []int{2}},
	// && and ||, nested, with !.
	{`{ resource.service.name = "checkout" && status = error }`, []int{1}},
	{`{ status = error && duration > 1s }`, []int{2}},
	{`{ status = error || duration > 1s }`, []int{1, 2, 5}},
	{`{ (status = error || duration > 1s) && kind != producer }`, []int{1, 2}},
	{`{ status = ok || (duration > 1s && kind = producer) || name = "db" }`, []int{0, 3, 5}},
	{`{ !(status = error || duration > 1s) }`, []int{0, 3, 4, 6}},
	{`{ !(status = error) && !(kind = server) }`, []int{3, 4, 5, 6}},
	{`{ span.code = 500 || span.code = "500" || span.code = 200 }`, []int{0, 1, 2}},
	{`{ span.nope = 1 || true }`, []int{0, 1, 2, 3, 4, 5, 6}},
	{`{ span.code != nil && false }`, nil},
	{`{ !(!(name =~ "c.*")) && name =~ ".*e" }`, []int{2, 6}},
}

func matched(f *Filter, b *events.Batch) []int {
	sel := make([]bool, b.Len)
	for i := range sel {
		sel[i] = i%2 == 0 // Match must overwrite whatever is there
	}
	f.Match(b, sel)
	var rows []int
	for i, ok := range sel {
		if ok {
			rows = append(rows, i)
		}
	}
	return rows
}

func TestMatch(t *testing.T) {
	b := batchOf(sample)
	for _, tc := range evalCases {
		f, err := Parse(tc.filter)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.filter, err)
			continue
		}
		got := matched(f, b)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s matches rows %v, want %v", tc.filter, got, tc.want)
		}
		for i, ev := range sample {
			if want := refEval(f.root, ev); slices.Contains(got, i) != want {
				t.Errorf("%s on row %d: Match says %v, the row-by-row reading %v", tc.filter, i, !want, want)
			}
		}
	}
}

// TestMatchOnlyColumns checks that Match needs only what Columns names: a
// batch holding just those columns gives the same answer.
func TestMatchOnlyColumns(t *testing.T) {
	full := batchOf(sample)
	for _, tc := range evalCases {
		f, err := Parse(tc.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.filter, err)
		}
		cols := f.Columns()
		b := &events.Batch{Len: full.Len, Attrs: map[string]*events.Column{}}
		for bit, dst := range map[events.Intrinsic]func(){
			events.ColDuration:      func() { b.Duration = full.Duration },
			events.ColTraceID:       func() { b.TraceID = full.TraceID },
			events.ColSpanID:        func() { b.SpanID = full.SpanID },
			events.ColParentID:      func() { b.ParentID = full.ParentID },
			events.ColService:       func() { b.Service = full.Service },
			events.ColName:          func() { b.Name = full.Name },
			events.ColKind:          func() { b.Kind = full.Kind },
			events.ColStatus:        func() { b.Status = full.Status },
			events.ColStatusMessage: func() { b.StatusMessage = full.StatusMessage },
		} {
			if cols.Intrinsics&bit != 0 {
				dst()
			}
		}
		for _, k := range cols.Attrs {
			if c := full.Attrs[k]; c != nil {
				b.Attrs[k] = c
			}
		}
		if got, want := matched(f, b), matched(f, full); !slices.Equal(got, want) {
			t.Errorf("%s on its columns only: %v, on the full batch %v", tc.filter, got, want)
		}
	}
}

func TestMatchMissingColumnPanics(t *testing.T) {
	f, err := Parse(`{ duration > 1s }`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "no duration column") {
			t.Errorf("recovered %v, want a panic naming the duration column", r)
		}
	}()
	f.Match(&events.Batch{Len: 1}, make([]bool, 1))
}

func TestMatchEmptyBatch(t *testing.T) {
	for _, tc := range evalCases {
		f, err := Parse(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		f.Match(&events.Batch{}, nil) // no columns, no rows: nothing to read
	}
}

func TestMatchWrongLengthPanics(t *testing.T) {
	f, err := Parse(`{ }`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Match with a selection of the wrong length did not panic")
		}
	}()
	f.Match(batchOf(sample), make([]bool, 3))
}

// TestMatchConcurrent runs one filter on many goroutines, which share its
// compiled form and draw their scratch space from its pool.
func TestMatchConcurrent(t *testing.T) {
	f, err := Parse(`{ (name =~ "[a-z]+" || span.code = 500) && !(.x = "res") }`)
	if err != nil {
		t.Fatal(err)
	}
	b := batchOf(sample)
	want := matched(f, b)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if got := matched(f, b); !slices.Equal(got, want) {
					t.Errorf("concurrent Match: %v, want %v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRegexMemo checks that remembering answers per distinct string, across
// rows and across batches, never changes them.
func TestRegexMemo(t *testing.T) {
	f, err := Parse(`{ span.v =~ "a+b?[0-9]*" }`)
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"a", "ab", "b", "a", "a", "ab1", "", "aab22", "x", "x", "a"}
	re := regexp.MustCompile(`^(?:a+b?[0-9]*)$`)
	for round := range 3 {
		var evs []events.Event
		for i := range 2 * maxMemo {
			v := values[(i+round)%len(values)]
			if i > maxMemo {
				v = fmt.Sprintf("a%d", i) // more distinct values than the memo keeps
			}
			evs = append(evs, events.Event{Attrs: []events.Attr{{Key: "span.v", Value: events.String(v)}}})
		}
		got := matched(f, batchOf(evs))
		var want []int
		for i, ev := range evs {
			if re.MatchString(ev.Attrs[0].Value.Str) {
				want = append(want, i)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: %d rows matched, want %d", round, len(got), len(want))
		}
	}
}

// TestMatcherKinds checks the regular expressions that skip the automaton
// against the automaton.
func TestMatcherKinds(t *testing.T) {
	inputs := []string{"", "a", "abc", "xabc", "abcx", "xabcx", "GET", "POST", "GETPOST", "a\nb", "a.b", "ab"}
	for _, tc := range []struct {
		pattern string
		kind    matchKind
	}{
		{".*", mAny},
		{"abc", mLiteral},
		{"", mLiteral},
		{"abc.*", mPrefix},
		{".*abc", mSuffix},
		{".*abc.*", mContains},
		{".*.*", mContains},
		{"GET|POST", mSet},
		{"GET|", mSet},
		{"a.b", mRegexp},
		{"a\\.b", mRegexp},
		{"(?i)abc", mRegexp},
		{"a.*b", mRegexp},
		{"ab|a.*", mRegexp},
	} {
		m, _, msg := compileRegex(tc.pattern)
		if msg != "" {
			t.Fatalf("compileRegex(%q): %s", tc.pattern, msg)
		}
		if m.kind != tc.kind {
			t.Errorf("compileRegex(%q) is kind %d, want %d", tc.pattern, m.kind, tc.kind)
		}
		re := regexp.MustCompile("^(?s:" + tc.pattern + ")$")
		for _, in := range inputs {
			if got, want := m.matchString(in, nil), re.MatchString(in); got != want {
				t.Errorf("%q matchString(%q) = %v, want %v", tc.pattern, in, got, want)
			}
			if got, want := m.matchBytes([]byte(in)), re.MatchString(in); got != want {
				t.Errorf("%q matchBytes(%q) = %v, want %v", tc.pattern, in, got, want)
			}
		}
	}
}

func TestColumns(t *testing.T) {
	for _, tc := range []struct {
		filter string
		want   events.Columns
	}{
		{`{ }`, events.Columns{}},
		{`{ true }`, events.Columns{}},
		{`{ resource.service.name = "a" && span.http.route = "/" && duration > 1s && status = error }`,
			events.Columns{Intrinsics: events.ColService | events.ColDuration | events.ColStatus, Attrs: []string{"span.http.route"}}},
		{`{ name = "a" || kind = server || statusMessage = "" }`,
			events.Columns{Intrinsics: events.ColName | events.ColKind | events.ColStatusMessage}},
		{`{ span:id = "1" && span:parentID = "2" && trace:id = "3" }`,
			events.Columns{Intrinsics: events.ColSpanID | events.ColParentID | events.ColTraceID}},
		{`{ .http.route = "/" && resource.host.name = "h" && span.http.route != nil }`,
			events.Columns{Attrs: []string{"resource.host.name", "resource.http.route", "span.http.route"}}},
		{`{ .service.name = "a" }`,
			events.Columns{Intrinsics: events.ColService, Attrs: []string{"resource.service.name", "span.service.name"}}},
		{`{ !(span.b = 1) && span.a = 2 && span.b = 3 }`, events.Columns{Attrs: []string{"span.a", "span.b"}}},
		{`{ duration != nil && status != nil }`, events.Columns{}}, // always true: nothing to read
		{`{ resource.service.name != nil }`, events.Columns{Intrinsics: events.ColService}},
	} {
		f, err := Parse(tc.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.filter, err)
		}
		got := f.Columns()
		if got.Intrinsics != tc.want.Intrinsics || !slices.Equal(got.Attrs, tc.want.Attrs) || got.AllAttrs {
			t.Errorf("%s: Columns() = %+v, want %+v", tc.filter, got, tc.want)
		}
		got.Attrs = append(got.Attrs[:0], "changed")
		if again := f.Columns(); len(again.Attrs) > 0 && again.Attrs[0] == "changed" {
			t.Errorf("%s: changing Columns' result changed the filter", tc.filter)
		}
	}
}

func TestConditions(t *testing.T) {
	f, err := Parse(`{ resource.service.name = "checkout" && (.http.route =~ "/cart.*" || !(span.code >= 500)) && 1s < duration && span.x != nil && trace:id = "abc" }`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Condition{
		{Field: "resource.service.name", Intrinsic: events.ColService, Op: OpEq, Value: `"checkout"`},
		{Field: ".http.route", Keys: []string{"span.http.route", "resource.http.route"}, Op: OpRe, Value: `"/cart.*"`},
		{Field: "span.code", Keys: []string{"span.code"}, Op: OpGte, Value: "500"},
		{Field: "duration", Intrinsic: events.ColDuration, Op: OpGt, Value: "1s"},
		{Field: "span.x", Keys: []string{"span.x"}, Op: OpNeq, Value: "nil"},
		{Field: "trace:id", Intrinsic: events.ColTraceID, Op: OpEq, Value: `"abc"`},
	}
	got := f.Conditions()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Conditions() =\n%+v\nwant\n%+v", got, want)
	}
	if s := got[3].String(); s != "duration > 1s" {
		t.Errorf("Condition.String() = %q, want %q", s, "duration > 1s")
	}
	if empty, _ := Parse(`{ }`); empty.Conditions() != nil {
		t.Errorf("{ } has conditions %v", empty.Conditions())
	}
}

func TestServices(t *testing.T) {
	for _, tc := range []struct {
		filter string
		want   []string
		ok     bool
	}{
		{`{ }`, nil, false},
		{`{ resource.service.name = "a" }`, []string{"a"}, true},
		{`{ resource.service.name = "a" && duration > 1s }`, []string{"a"}, true},
		{`{ duration > 1s && (resource.service.name = "b" || resource.service.name = "a") }`, []string{"a", "b"}, true},
		{`{ resource.service.name =~ "b|a|c" && resource.service.name =~ "a|c|d" }`, []string{"a", "c"}, true},
		{`{ resource.service.name =~ "a" }`, []string{"a"}, true},
		{`{ resource.service.name = "a" && resource.service.name = "b" }`, []string{}, true},
		{`{ false }`, []string{}, true},
		{`{ false || resource.service.name = "a" }`, []string{"a"}, true},
		{`{ resource.service.name = "a" || duration > 1s }`, nil, false},
		{`{ resource.service.name != "a" }`, nil, false},
		{`{ resource.service.name =~ "a.*" }`, nil, false},
		{`{ !(resource.service.name = "a") }`, nil, false},
		{`{ .service.name = "a" }`, nil, false}, // a span attribute may stand in
		{`{ span.service.name = "a" }`, nil, false},
		{`{ true }`, nil, false},
	} {
		f, err := Parse(tc.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.filter, err)
		}
		got, ok := f.Services()
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Services() = %q, %v; want %q, %v", tc.filter, got, ok, tc.want, tc.ok)
		}
		if !ok {
			continue
		}
		// Sound: every event the filter matches has one of those services.
		b := batchOf(sample)
		for _, i := range matched(f, b) {
			if !slices.Contains(got, b.Service[i]) {
				t.Errorf("%s matches row %d of service %q, not in %q", tc.filter, i, b.Service[i], got)
			}
		}
	}
}

func TestDurationRange(t *testing.T) {
	const (
		lo = math.MinInt64
		hi = math.MaxInt64
	)
	for _, tc := range []struct {
		filter   string
		min, max time.Duration
		ok       bool
	}{
		{`{ }`, lo, hi, false},
		{`{ name = "a" }`, lo, hi, false},
		{`{ duration > 500ms }`, 500*time.Millisecond + 1, hi, true},
		{`{ duration >= 500ms && name = "x" }`, 500 * time.Millisecond, hi, true},
		{`{ duration < 1s }`, lo, time.Second - 1, true},
		{`{ duration <= 1s && duration > 10ms }`, 10*time.Millisecond + 1, time.Second, true},
		{`{ duration = 2s }`, 2 * time.Second, 2 * time.Second, true},
		{`{ duration > 1.5 }`, 2, hi, true},
		{`{ duration <= 1.5 }`, lo, 1, true},
		{`{ duration = 1.5 }`, 1, 0, true},
		{`{ duration != 1s }`, lo, hi, false},
		{`{ (duration > 1s && duration < 2s) || (duration > 5s && duration < 6s) }`, time.Second + 1, 6*time.Second - 1, true},
		{`{ duration > 1s || name = "x" }`, lo, hi, false},
		{`{ duration > 2s && duration < 1s }`, 1, 0, true},
		{`{ duration > 2s && false }`, 1, 0, true},
		{`{ !(duration > 1s) }`, lo, hi, false},
		{`{ duration > maxInt }`, 1, 0, true},
		{`{ duration < minInt }`, 1, 0, true},
		{`{ duration > 1e300 }`, 1, 0, true},
		{`{ duration < 1e300 }`, lo, hi, false},
	} {
		f, err := Parse(tc.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.filter, err)
		}
		gotMin, gotMax, ok := f.DurationRange()
		if gotMin != tc.min || gotMax != tc.max || ok != tc.ok {
			t.Errorf("%s: DurationRange() = %d, %d, %v; want %d, %d, %v", tc.filter, gotMin, gotMax, ok, tc.min, tc.max, tc.ok)
		}
		if m, ok := f.MinDuration(); m != gotMin || ok != (gotMin != lo) {
			t.Errorf("%s: MinDuration() = %d, %v; DurationRange's min is %d", tc.filter, m, ok, gotMin)
		}
		// Sound: every event the filter matches is in the range.
		b := batchOf(sample)
		for _, i := range matched(f, b) {
			if d := time.Duration(b.Duration[i]); d < gotMin || d > gotMax {
				t.Errorf("%s matches row %d of duration %v, outside [%v, %v]", tc.filter, i, d, gotMin, gotMax)
			}
		}
	}
}
