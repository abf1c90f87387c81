package traceql

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// canonicalCases are inputs and the canonical text Parse gives them. The
// fuzz target starts from them too.
var canonicalCases = []struct{ in, want string }{
	{`{}`, `{ }`},
	{"  {\n}  ", `{ }`},
	{`{ resource.service.name = "checkout" && span.http.route = "/cart" && duration > 500ms && status = error }`,
		`{ resource.service.name = "checkout" && span.http.route = "/cart" && duration > 500ms && status = error }`},
	{`{resource.service.name="checkout"&&duration>500ms}`, `{ resource.service.name = "checkout" && duration > 500ms }`},
	// Intrinsics, long and scoped forms.
	{`{ span:name = "x" && span:duration >= 1s && span:status != ok && span:kind = client && span:statusMessage =~ "a.*" }`,
		`{ name = "x" && duration >= 1s && status != ok && kind = client && statusMessage =~ "a.*" }`},
	{`{ name < "m" && statusMessage <= "z" && kind != unspecified && kind = internal && kind = producer && kind = consumer && kind = server }`,
		`{ name < "m" && statusMessage <= "z" && kind != unspecified && kind = internal && kind = producer && kind = consumer && kind = server }`},
	{`{ status = unset || status = ok }`, `{ status = unset || status = ok }`},
	{`{ span:id = "00f067aa0ba902b7" && span:parentID != "1" && trace:id = "4bf92f3577b34da6a3ce929d0e0e4736" }`,
		`{ span:id = "00f067aa0ba902b7" && span:parentID != "1" && trace:id = "4bf92f3577b34da6a3ce929d0e0e4736" }`},
	{`{ trace:id =~ "4bf9.*" }`, `{ trace:id =~ "4bf9.*" }`},
	// Attributes: scopes, dotted and quoted names.
	{`{ span.http.response.status_code >= 500 }`, `{ span.http.response.status_code >= 500 }`},
	{`{ .http.route = "/x" }`, `{ .http.route = "/x" }`},
	{`{ resource.host.name != "a" }`, `{ resource.host.name != "a" }`},
	{`{ resource."service.name" = "a" }`, `{ resource.service.name = "a" }`},
	{`{ span."my attr" = 1 }`, `{ span."my attr" = 1 }`},
	{`{ span.attribute."name with space" = "v" }`, `{ span."attribute.name with space" = "v" }`},
	{`{ span."a\"b\\c" = 1 }`, `{ span."a\"b\\c" = 1 }`},
	{`{ span."plain" = 1 }`, `{ span.plain = 1 }`},
	{`{ span.a-b/c:d = 1 }`, `{ span.a-b/c:d = 1 }`},
	{`{ ."5xx" = 1 }`, `{ ."5xx" = 1 }`},
	{`{ span.5xx = 1 }`, `{ span.5xx = 1 }`},
	{`{ span.é = "ü" }`, `{ span.é = "ü" }`},
	// Literals.
	{"{ span.x = `a\\b\"` }", `{ span.x = "a\\b\"" }`},
	{`{ span.x = "tab\there\u00e9\x00" }`, `{ span.x = "tab\thereé\x00" }`},
	{`{ span.x = -5 }`, `{ span.x = -5 }`},
	{`{ span.x > -0.5 }`, `{ span.x > -0.5 }`},
	{`{ span.x > .5 }`, `{ span.x > 0.5 }`},
	{`{ span.x = 2.0 }`, `{ span.x = 2.0 }`},
	{`{ span.x = 1e3 }`, `{ span.x = 1000.0 }`},
	{`{ span.x = 1.5e300 }`, `{ span.x = 1.5e+300 }`},
	{`{ span.x = maxInt || span.x = minInt }`, `{ span.x = 9223372036854775807 || span.x = -9223372036854775808 }`},
	{`{ span.x = true && span.y != false }`, `{ span.x = true && span.y != false }`},
	{`{ span.x = nil || span.y != nil }`, `{ span.x = nil || span.y != nil }`},
	{`{ duration != nil }`, `{ duration != nil }`},
	{`{ resource.service.name = nil }`, `{ resource.service.name = nil }`},
	{`{ span.error = "error" }`, `{ span.error = "error" }`},
	// Durations, in their largest exact unit.
	{`{ duration > 1.5s }`, `{ duration > 1500ms }`},
	{`{ duration > 1h30m }`, `{ duration > 90m }`},
	{`{ duration > 120m }`, `{ duration > 2h }`},
	{`{ duration > 100us && duration < 100µs && duration < 100μs }`, `{ duration > 100us && duration < 100us && duration < 100us }`},
	{`{ duration > 10ns && duration < 1d && duration < 1w && duration < 1y }`, `{ duration > 10ns && duration < 24h && duration < 168h && duration < 8760h }`},
	{`{ duration > 0s }`, `{ duration > 0s }`},
	{`{ duration > 0.000001ms }`, `{ duration > 1ns }`},
	{`{ duration > 500 }`, `{ duration > 500 }`},
	{`{ duration > 1.5 }`, `{ duration > 1.5 }`},
	{`{ duration > -5s }`, `{ duration > -5s }`},
	// Literals on the left are moved right.
	{`{ 500 < span.code }`, `{ span.code > 500 }`},
	{`{ 1s >= duration }`, `{ duration <= 1s }`},
	{`{ "x" = name }`, `{ name = "x" }`},
	{`{ nil != span.x }`, `{ span.x != nil }`},
	// Grouping: flattened, parenthesized only where && and || nest.
	{`{ (span.a = 1) }`, `{ span.a = 1 }`},
	{`{ ((span.a = 1 && span.b = 2) && span.c = 3) }`, `{ span.a = 1 && span.b = 2 && span.c = 3 }`},
	{`{ span.a = 1 && (span.b = 2 && span.c = 3) }`, `{ span.a = 1 && span.b = 2 && span.c = 3 }`},
	{`{ (span.a = 1 || span.b = 2) && span.c = 3 }`, `{ (span.a = 1 || span.b = 2) && span.c = 3 }`},
	{`{ span.a = 1 || (span.b = 2 && (span.c = 3 || span.d = 4)) }`, `{ span.a = 1 || (span.b = 2 && (span.c = 3 || span.d = 4)) }`},
	{`{ !(span.a = 1) }`, `{ !(span.a = 1) }`},
	{`{ !((span.a = 1 && span.b = 2)) && !(!(span.c = 3)) }`, `{ !(span.a = 1 && span.b = 2) && !(!(span.c = 3)) }`},
	{`{ true }`, `{ true }`},
	{`{ false || span.a = 1 }`, `{ false || span.a = 1 }`},
	// Comments and layout.
	{"{ // routes\n  span.a = 1 /* and */ &&\n\tspan.b = 2\n}", `{ span.a = 1 && span.b = 2 }`},
	// Regular expressions.
	{`{ span.x =~ "GET|POST" && span.y !~ ".*debug.*" }`, `{ span.x =~ "GET|POST" && span.y !~ ".*debug.*" }`},
}

func TestParseCanonical(t *testing.T) {
	for _, tc := range canonicalCases {
		f, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := f.String(); got != tc.want {
			t.Errorf("Parse(%q).String() =\n  %s\nwant\n  %s", tc.in, got, tc.want)
			continue
		}
		// The canonical text is a fixed point.
		g, err := Parse(tc.want)
		if err != nil {
			t.Errorf("Parse(%q) of the canonical form: %v", tc.want, err)
			continue
		}
		if got := g.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want it unchanged", tc.want, got)
		}
	}
}

// errorCases are inputs Parse refuses, where, and a part of the message.
var errorCases = []struct {
	in        string
	line, col int
	msg       string
}{
	{``, 1, 1, "empty filter"},
	{`   `, 1, 4, "empty filter"},
	{`span.x = 1`, 1, 1, `expected "{"`},
	{`{`, 1, 2, "expected a field or a value"},
	{`{ span.x = 1`, 1, 13, `expected &&, || or "}", found end of input`},
	{`{ span.x = 1 } extra`, 1, 16, "expected end of filter"},
	{`{ span.x }`, 1, 10, "expected an operator (=, !=, <, <=, >, >=, =~, !~) after span.x"},
	{`{ span.x = }`, 1, 12, "expected a field or a value"},
	{`{ span. = 1 }`, 1, 3, "expected an attribute name after span."},
	{`{ . = 1 }`, 1, 3, "expected an attribute name after ."},
	{`{ span."" = 1 }`, 1, 3, "expected an attribute name after span."},
	{`{ span."abc = 1 }`, 1, 8, "unterminated quoted attribute name"},
	{`{ span."a\n" = 1 }`, 1, 10, `only \" and \\`},
	{`{ span.x = "abc }`, 1, 12, "unterminated string"},
	{"{ span.x = \"a\nb\" }", 1, 12, "newline in string"},
	{`{ span.x = "\q" }`, 1, 12, "bad escape sequence"},
	{`{ span.x = 99999999999999999999 }`, 1, 12, "out of range"},
	{`{ span.x = 1e999 }`, 1, 12, "out of range"},
	{`{ duration > 5xyz }`, 1, 14, `invalid duration "5xyz"`},
	{`{ duration > 5 s }`, 1, 16, `expected &&, || or "}"`},
	{`{ duration > 1h30 }`, 1, 14, "missing unit"},
	{`{ duration > 99999999999h }`, 1, 14, "out of range"},
	{`{ span.x = 1 /* open`, 1, 14, "unterminated /* comment"},
	{`{ foo = 1 }`, 1, 3, "unknown field foo"},
	{`{ span.x = foo }`, 1, 12, "unknown field foo"},
	{`{ span:foo = 1 }`, 1, 3, "unknown intrinsic span:foo"},
	{`{ span: = 1 }`, 1, 3, "expected an intrinsic name after span:"},
	// Mixed && and ||, ! without parentheses.
	{`{ span.a = 1 || span.b = 2 && span.c = 3 }`, 1, 28, "&& and || have the same precedence"},
	{`{ span.a = 1 && span.b = 2 || span.c = 3 }`, 1, 28, "&& and || have the same precedence"},
	{`{ !span.a = 1 }`, 1, 4, "! applies to a condition in parentheses"},
	{`{ (span.a = 1 }`, 1, 15, `expected ")" to close the "(" at 1:3`},
	{`{ (span.a = 1 span.b = 2) }`, 1, 15, `expected &&, || or ")"`},
	// Comparisons Hearth does not do.
	{`{ span.a = span.b }`, 1, 12, "comparing two fields is not supported"},
	{`{ 1 = 1 }`, 1, 3, "a comparison needs a field"},
	{`{ "a.*" =~ span.x }`, 1, 3, "the regular expression goes on the right of =~"},
	{`{ span.x > 1 + 2 }`, 1, 14, "arithmetic (+) is not supported"},
	{`{ span.x > 2 * duration }`, 1, 14, "arithmetic (*) is not supported"},
	{`{ - span.x > 1 }`, 1, 3, "arithmetic (-) is not supported"},
	// Type errors.
	{`{ duration = "abc" }`, 1, 14, "duration is compared with a duration like 500ms"},
	{`{ duration =~ "1.*" }`, 1, 12, "duration does not compare with =~"},
	{`{ status !~ "e.*" }`, 1, 10, "status does not compare with !~"},
	{`{ duration = true }`, 1, 14, "not a boolean"},
	{`{ status > 3 }`, 1, 12, "status is compared with error, ok or unset, not an integer"},
	{`{ status > error }`, 1, 10, "status compares only with = and !="},
	{`{ status = "error" }`, 1, 12, "(without quotes)"},
	{`{ kind = error }`, 1, 10, "kind is compared with server, client"},
	{`{ kind < server }`, 1, 8, "kind compares only with = and !="},
	{`{ name = 5 }`, 1, 10, "name is a string: compare it with a quoted string, not an integer"},
	{`{ statusMessage = ok }`, 1, 19, "statusMessage is a string"},
	{`{ resource.service.name = 5s }`, 1, 27, "resource.service.name is a string"},
	{`{ span.x = error }`, 1, 12, `error is a status value, for the status intrinsic: to compare span.x with the text, quote it: "error"`},
	{`{ span.x = server }`, 1, 12, "server is a kind value"},
	{`{ span.x > true }`, 1, 10, "booleans compare only with = and !="},
	{`{ span.x =~ 5 }`, 1, 13, "=~ needs a regular expression in a string, not an integer"},
	{`{ span.x !~ nil }`, 1, 10, "nil compares only with = and !="},
	{`{ span.x < nil }`, 1, 10, "nil compares only with = and !="},
	{`{ duration = nil }`, 1, 14, "duration always has a value: = nil would never match"},
	{`{ status = nil }`, 1, 12, "status always has a value"},
	{`{ span:id = 5 }`, 1, 13, "span:id is compared with a hex ID in a string"},
	{`{ span:id = "xyz" }`, 1, 13, `span:id is compared with a hex span ID of 1 to 16 digits, not "xyz"`},
	{`{ trace:id = "0123456789abcdef0123456789abcdef0" }`, 1, 14, "hex trace ID of 1 to 32 digits"},
	{`{ span:parentID > "1" }`, 1, 17, "span:parentID compares only with =, !=, =~ and !~"},
	{`{ span.x =~ "(" }`, 1, 13, "invalid regular expression: missing closing )"},
	{`{ span.x =~ "a)|(b" }`, 1, 13, "invalid regular expression"},
	{`{ span.x =~ "(a{1000}){1000}" }`, 1, 13, "invalid regular expression: invalid repeat count"},
	{`{ span.x =~ "(abcdefghijklmnopqrst){1000}" }`, 1, 13, "regular expression is too complex (about 24000 instructions, limit is 20000)"},
	// Trace-level data.
	{`{ traceDuration > 1s }`, 1, 3, "traceDuration is not supported: it needs the whole trace"},
	{`{ rootName = "a" }`, 1, 3, "rootName is not supported"},
	{`{ rootServiceName = "a" }`, 1, 3, "rootServiceName is not supported"},
	{`{ trace:duration > 1s }`, 1, 3, "trace:duration is not supported: it needs the whole trace"},
	{`{ trace:rootService = "a" }`, 1, 3, "trace:rootService is not supported"},
	{`{ span:childCount > 1 }`, 1, 3, "span:childCount is not supported"},
	{`{ parent = nil }`, 1, 3, "parent is not supported"},
	{`{ event:name = "exception" }`, 1, 3, "event:name is not supported: span events"},
	{`{ instrumentation:name = "grpc" }`, 1, 3, "instrumentation:name is not supported"},
	{`{ event.exception.message = "x" }`, 1, 3, "event. attributes are not supported"},
	{`{ link.x = "x" }`, 1, 3, "link. attributes are not supported"},
	{`{ parent.span.x = "x" }`, 1, 3, "parent. attributes are not supported"},
	{`{ instrumentation.x = "x" }`, 1, 3, "instrumentation. attributes are not supported"},
	// Beyond a span filter.
	{`{ } | count() > 2`, 1, 5, "the pipeline stage | count(...) is not supported"},
	{`{ status = error } | select(span.x)`, 1, 20, "the pipeline stage | select(...) is not supported"},
	{`{ } | rate() by (resource.service.name)`, 1, 5, "the pipeline stage | rate(...) is not supported"},
	{`{ } |`, 1, 5, "pipelines (| ...) are not supported"},
	{`{ span.a = 1 } && { span.b = 2 }`, 1, 16, "combining spansets with && is not supported"},
	{`{ } || { }`, 1, 5, "combining spansets with || is not supported"},
	{`{ } >> { }`, 1, 5, "structural operator >> is not supported"},
	{`{ } > { }`, 1, 5, "structural operator > is not supported"},
	{`{ } ~ { }`, 1, 5, "structural operator ~ is not supported"},
	{`{ } &>> { }`, 1, 5, "structural operator &>> is not supported"},
	{`{ } !< { }`, 1, 5, "structural operator !< is not supported"},
	{`{ } !~ { }`, 1, 5, "structural operator !~ is not supported"},
	{`({ span.a = 1 })`, 1, 1, "parentheses around spansets are not supported"},
	{`{ } with(most_recent=true)`, 1, 5, "query hints (with ...) are not supported"},
	{`count() > 1`, 1, 1, `expected "{", found "count"`},
	// Positions count lines and characters.
	{"{\n  name = \"é\" &&\n  foo = 1 }", 3, 3, "unknown field foo"},
	{`{ span.é = 1 && ü = 2 }`, 1, 17, `expected a field or a value, found "ü"`},
	{"{ span.x = \"\xff\" }", 1, 13, "invalid UTF-8"},
	{`{ span.x = 1 # }`, 1, 14, `expected &&, || or "}", found "#"`},
	{`{ span.x = 'a' }`, 1, 12, "strings are written in double quotes or backquotes"},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		f, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %s, want an error", tc.in, f)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) returned %T, want *ParseError: %v", tc.in, err, err)
			continue
		}
		if pe.Line != tc.line || pe.Column != tc.col || !strings.Contains(pe.Msg, tc.msg) {
			t.Errorf("Parse(%q) = %v\nwant     %d:%d: …%s…", tc.in, err, tc.line, tc.col, tc.msg)
		}
		if want := fmt.Sprintf("%d:%d: %s", pe.Line, pe.Column, pe.Msg); err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
	}
}

func TestParseErrorOffset(t *testing.T) {
	// Column counts characters, Offset bytes: "é" is two bytes.
	_, err := Parse(`{ name = "é" && foo = 1 }`)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *ParseError", err)
	}
	if pe.Column != 17 || pe.Offset != 17 {
		t.Errorf("Column %d, Offset %d; want 17 and 17", pe.Column, pe.Offset)
	}
	_, err = Parse(`{ name = "éé" && foo = 1 }`)
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *ParseError", err)
	}
	if pe.Column != 18 || pe.Offset != 19 {
		t.Errorf("Column %d, Offset %d; want 18 and 19", pe.Column, pe.Offset)
	}
}

func TestDurations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"10ns", 10},
		{"100us", 100e3},
		{"100µs", 100e3},
		{"500ms", 500e6},
		{"1.5s", 1.5e9},
		{".5s", 0.5e9},
		{"2m", 120e9},
		{"1h", 3600e9},
		{"1h30m", 5400e9},
		{"1.5h", 5400e9},
		{"1d", 86400e9},
		{"2w", 14 * 86400e9},
		{"1y", 365 * 86400e9},
		{"0.333333333333333333333s", 333333333},
		{"-5s", -5e9},
		{"9223372036854775807ns", math.MaxInt64},
		{"-9223372036854775808ns", math.MinInt64},
		{"2562047h47m16.854775807s", math.MaxInt64},
	} {
		got, msg := parseDuration(tc.in)
		if msg != "" || got != tc.want {
			t.Errorf("parseDuration(%q) = %d, %q; want %d", tc.in, got, msg, tc.want)
		}
		back, msg := parseDuration(formatDuration(got))
		if msg != "" || back != got {
			t.Errorf("parseDuration(formatDuration(%d) = %q) = %d, %q", got, formatDuration(got), back, msg)
		}
	}
	for _, bad := range []string{"9223372036854775808ns", "-9223372036854775809ns", "2562048h", "1x", "s", "1h30", "1..5s"} {
		if d, msg := parseDuration(bad); msg == "" {
			t.Errorf("parseDuration(%q) = %d, want an error", bad, d)
		}
	}
}

func TestLimits(t *testing.T) {
	long := `{ span.x = "` + strings.Repeat("a", maxFilterBytes) + `" }`
	if _, err := Parse(long); err == nil || !strings.Contains(err.Error(), "limit is 65536") {
		t.Errorf("Parse of a %d-byte filter: %v, want the size limit", len(long), err)
	}
	deep := "{ " + strings.Repeat("(", maxDepth+1) + "span.x = 1" + strings.Repeat(")", maxDepth+1) + " }"
	if _, err := Parse(deep); err == nil || !strings.Contains(err.Error(), "nests deeper than") {
		t.Errorf("Parse of %d nested parentheses: %v, want the depth limit", maxDepth+1, err)
	}
	ok := "{ " + strings.Repeat("(", maxDepth-1) + "span.x = 1" + strings.Repeat(")", maxDepth-1) + " }"
	if _, err := Parse(ok); err != nil {
		t.Errorf("Parse of %d nested parentheses: %v", maxDepth-1, err)
	}
	many := "{ span.x = 1" + strings.Repeat(" || span.x = 1", maxConditions) + " }"
	if _, err := Parse(many); err == nil || !strings.Contains(err.Error(), "more than 1024 conditions") {
		t.Errorf("Parse of %d conditions: %v, want the condition limit", maxConditions+1, err)
	}
	bigRe := `{ span.x =~ "` + strings.Repeat("a", maxRegexBytes) + `b*" }`
	if _, err := Parse(bigRe); err == nil || !strings.Contains(err.Error(), "regular expression is 16386 bytes") {
		t.Errorf("Parse of a long regular expression: %v, want the length limit", err)
	}
	// Each fits, together they do not.
	one := `span.x =~ "(a|b|c|d|e){1000}"`
	if _, err := Parse("{ " + one + " }"); err != nil {
		t.Fatalf("Parse of one regular expression: %v", err)
	}
	if _, err := Parse("{ " + strings.Repeat(one+" || ", 20) + one + " }"); err == nil ||
		!strings.Contains(err.Error(), "too complex together") {
		t.Errorf("Parse of 21 big regular expressions: %v, want the filter's limit", err)
	}
}
