package parser

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"

	"github.com/hearth-profiler/hearth/internal/labels"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata/*.txtar")

// goldenCase is one testdata/*.txtar file: an input section, then either
// canonical and ast sections or an error section.
type goldenCase struct {
	file    string
	archive *txtar.Archive
	input   string
}

func readGolden(t testing.TB) []goldenCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txtar files")
	}
	var cases []goldenCase
	for _, file := range files {
		a, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Files) == 0 || a.Files[0].Name != "input" {
			t.Fatalf("%s: first section is not -- input --", file)
		}
		// txtar ends every section with a newline; the input is the text
		// before it, so an input may span lines but cannot end in a newline.
		input := strings.TrimSuffix(string(a.Files[0].Data), "\n")
		cases = append(cases, goldenCase{file: file, archive: a, input: input})
	}
	return cases
}

// matchTypeNames spells match types in AST dumps, differently from the
// canonical form so that a dump checks the type, not just the printer.
var matchTypeNames = map[labels.MatchType]string{
	labels.MatchEqual:     "Equal",
	labels.MatchNotEqual:  "NotEqual",
	labels.MatchRegexp:    "Regexp",
	labels.MatchNotRegexp: "NotRegexp",
}

// dumpAST formats s on one line, field by field.
func dumpAST(s *Selector) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Selector{Type: %q, Matchers: [", s.ProfileType)
	for i, m := range s.Matchers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s(%s, %q)", matchTypeNames[m.Type], m.Name, m.Value)
	}
	b.WriteString("]}")
	return b.String()
}

// goldenSections returns the sections a golden file should hold after its
// input, for the result of parsing the input.
func goldenSections(s *Selector, err error) []txtar.File {
	if err != nil {
		return []txtar.File{{Name: "error", Data: []byte(err.Error() + "\n")}}
	}
	return []txtar.File{
		{Name: "canonical", Data: []byte(s.String() + "\n")},
		{Name: "ast", Data: []byte(dumpAST(s) + "\n")},
	}
}

func TestGolden(t *testing.T) {
	for _, c := range readGolden(t) {
		t.Run(strings.TrimSuffix(filepath.Base(c.file), ".txtar"), func(t *testing.T) {
			s, err := Parse(c.input)
			if err != nil {
				var perr *ParseError
				if !errors.As(err, &perr) {
					t.Fatalf("Parse(%q) returned %T, want *ParseError: %v", c.input, err, err)
				}
			}
			got := goldenSections(s, err)
			if *update {
				c.archive.Files = append(c.archive.Files[:1], got...)
				if err := os.WriteFile(c.file, txtar.Format(c.archive), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(c.archive.Files[1:], got); diff != "" {
				t.Errorf("Parse(%q) differs from %s (-want +got), run with -update to accept:\n%s", c.input, c.file, diff)
			}
			if err == nil {
				checkRoundTrip(t, c.input, s)
			}
		})
	}
}

// checkRoundTrip checks that the canonical form of s, parsed from input,
// parses to the same selector.
func checkRoundTrip(t *testing.T, input string, s *Selector) {
	t.Helper()
	canon := s.String()
	s2, err := Parse(canon)
	if err != nil {
		t.Fatalf("Parse(%q) of the canonical form of %q: %v", canon, input, err)
	}
	if got := s2.String(); got != canon {
		t.Errorf("Parse(%q).String() = %q, want %q (input %q)", canon, got, canon, input)
	}
	if got, want := dumpAST(s2), dumpAST(s); got != want {
		t.Errorf("Parse(%q) = %s, want %s (input %q)", canon, got, want, input)
	}
}

// TestGoldenCoverage makes sure the testdata keeps covering what it must.
func TestGoldenCoverage(t *testing.T) {
	var valid, invalid int
	for _, c := range readGolden(t) {
		if _, err := Parse(c.input); err != nil {
			invalid++
		} else {
			valid++
		}
	}
	if valid+invalid < 40 || valid < 15 || invalid < 15 {
		t.Errorf("testdata has %d valid and %d invalid cases, want at least 40 with 15 of each", valid, invalid)
	}
}

// TestParseLimitsAndEncoding covers errors whose inputs do not fit a golden
// file well: large or not UTF-8.
func TestParseLimitsAndEncoding(t *testing.T) {
	manyMatchers := func(n int) string {
		var b strings.Builder
		b.WriteString("cpu{")
		for i := range n {
			fmt.Fprintf(&b, "l%d=\"v\",", i)
		}
		b.WriteString("}")
		return b.String()
	}
	tests := []struct {
		name, input, want string
	}{
		{
			name:  "too long",
			input: `{a="` + strings.Repeat("x", maxSelectorBytes) + `"}`,
			want:  "1:1: selector is 65542 bytes, limit is 65536",
		},
		{
			name:  "too many matchers",
			input: manyMatchers(maxMatchers + 1),
			want:  fmt.Sprintf("1:%d: too many matchers: limit is 256", len(manyMatchers(maxMatchers))),
		},
		{
			name:  "invalid UTF-8 in a string",
			input: "{a=\"x\xffy\"}",
			want:  "1:6: invalid UTF-8 encoding",
		},
		{
			name:  "invalid UTF-8 outside strings",
			input: "cpu\xc3",
			want:  "1:4: invalid UTF-8 encoding",
		},
		{
			name:  "NUL byte",
			input: "cpu\x00",
			want:  `1:4: expected "{" or end of input, found "\x00"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.input)
			if err == nil {
				t.Fatalf("Parse(%.40q...) succeeded, want error %q", tt.input, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%.40q...) error = %q, want %q", tt.input, got, tt.want)
			}
		})
	}

	// The limits are inclusive.
	long := `{a="` + strings.Repeat("x", maxSelectorBytes-6) + `"}`
	if _, err := Parse(long); err != nil {
		t.Errorf("Parse of a %d-byte selector: %v", len(long), err)
	}
	s, err := Parse(manyMatchers(maxMatchers))
	if err != nil {
		t.Fatalf("Parse of %d matchers: %v", maxMatchers, err)
	}
	if len(s.Matchers) != maxMatchers {
		t.Errorf("Parse of %d matchers gave %d", maxMatchers, len(s.Matchers))
	}
}

// TestParseCarriageReturns covers inputs with \r, which golden files do
// not keep reliably: \r is whitespace between tokens and, as in Go, is
// dropped from backquoted strings.
func TestParseCarriageReturns(t *testing.T) {
	tests := []struct{ input, want string }{
		{"cpu{\r\n  a=\"x\",\r\n}\r\n", `process_cpu:cpu:nanoseconds:cpu:nanoseconds{a="x"}`},
		{"{a=`x\r\ny`}", `{a="x\ny"}`},
		{"{a=\"x\\r\"}", `{a="x\r"}`},
	}
	for _, tt := range tests {
		s, err := Parse(tt.input)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.input, err)
			continue
		}
		if got := s.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.input, got, tt.want)
		}
	}
}

func TestParseErrorPosition(t *testing.T) {
	tests := []struct {
		query string
		pos   Pos
		want  string
	}{
		{"", 0, "1:1: m"},
		{"abc", 2, "1:3: m"},
		{"abc", 3, "1:4: m"},
		{"a\nbc", 1, "1:2: m"},
		{"a\nbc", 2, "2:1: m"},
		{"a\nb\ncd", 6, "3:3: m"},
		{"ab", 10, "1:3: m"}, // clamped to the end
		{"ab", -1, "1:1: m"},
	}
	for _, tt := range tests {
		e := &ParseError{Pos: tt.pos, Query: tt.query, Msg: "m"}
		if got := e.Error(); got != tt.want {
			t.Errorf("ParseError{Pos: %d, Query: %q}.Error() = %q, want %q", tt.pos, tt.query, got, tt.want)
		}
	}
}

// TestSelectorString covers selectors that Parse cannot produce, such as the
// zero value.
func TestSelectorString(t *testing.T) {
	tests := []struct {
		s    *Selector
		want string
	}{
		{&Selector{}, "{}"},
		{&Selector{ProfileType: "a:b:c::"}, "a:b:c::"},
		{&Selector{Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchNotEqual, "a", `"\`)}}, `{a!="\"\\"}`},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%s.String() = %q, want %q", dumpAST(tt.s), got, tt.want)
		}
	}
}

// TestMatchers checks that the matchers Parse returns match what they say.
func TestMatchers(t *testing.T) {
	s, err := Parse(`{a="x", b!="x", c=~"x|y", d!~'x.*'}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		v    string
		want []bool
	}{
		{"x", []bool{true, false, true, false}},
		{"y", []bool{false, true, true, true}},
		{"xx", []bool{false, true, false, false}},
		{"", []bool{false, true, false, true}},
	}
	for _, tt := range tests {
		for i, m := range s.Matchers {
			if got := m.Matches(tt.v); got != tt.want[i] {
				t.Errorf("%s.Matches(%q) = %v, want %v", m, tt.v, got, tt.want[i])
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range readGolden(f) {
		f.Add(c.input)
	}
	f.Fuzz(func(t *testing.T, input string) {
		s, err := Parse(input)
		if err != nil {
			var perr *ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("Parse(%q) returned %T, want *ParseError: %v", input, err, err)
			}
			return
		}
		canon := s.String()
		s2, err := Parse(canon)
		if len(canon) > maxSelectorBytes {
			// Alias expansion and quoting can make the canonical form longer
			// than the input, and then past the limit.
			if err == nil {
				t.Fatalf("Parse of the %d-byte canonical form of %q succeeded", len(canon), input)
			}
			return
		}
		if err != nil {
			t.Fatalf("Parse(%q) of the canonical form of %q: %v", canon, input, err)
		}
		if got := s2.String(); got != canon {
			t.Fatalf("Parse(%q).String() = %q, want %q (input %q)", canon, got, canon, input)
		}
	})
}

func ExampleParse() {
	sel, err := Parse(`cpu{service_name="checkout", region=~'eu-.*'}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sel.ProfileType)
	fmt.Println(sel)

	_, err = Parse(`cpu{service.name="checkout"}`)
	fmt.Println(err)
	// Output:
	// process_cpu:cpu:nanoseconds:cpu:nanoseconds
	// process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout", region=~"eu-.*"}
	// 1:5: invalid label name "service.name": label names match [a-zA-Z_][a-zA-Z0-9_]*
}
