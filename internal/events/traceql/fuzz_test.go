package traceql

import (
	"errors"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, tc := range canonicalCases {
		f.Add(tc.in)
	}
	for _, tc := range errorCases {
		f.Add(tc.in)
	}
	for _, tc := range evalCases {
		f.Add(tc.filter)
	}
}

// FuzzParse checks that Parse never panics, fails only with a *ParseError
// that points into the input, and that the canonical text of what it
// accepts parses to the same canonical text.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		flt, err := Parse(in)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) returned %T, want *ParseError: %v", in, err, err)
			}
			if pe.Offset < 0 || pe.Offset > len(in) || pe.Line < 1 || pe.Column < 1 {
				t.Fatalf("Parse(%q): error position %d:%d (offset %d) outside the input", in, pe.Line, pe.Column, pe.Offset)
			}
			return
		}
		canon := flt.String()
		again, err := Parse(canon)
		if err != nil {
			if len(canon) > maxFilterBytes {
				return // the canonical text's spacing took it past the limit
			}
			t.Fatalf("Parse(%q), the canonical text of %q: %v", canon, in, err)
		}
		if got := again.String(); got != canon {
			t.Fatalf("Parse(%q).String() = %q, want it unchanged (input %q)", canon, got, in)
		}
	})
}

// FuzzMatch checks the columnar evaluation of whatever Parse accepts
// against the row-by-row reading of the same rules.
func FuzzMatch(f *testing.F) {
	addSeeds(f)
	b := batchOf(sample)
	f.Fuzz(func(t *testing.T, in string) {
		flt, err := Parse(in)
		if err != nil {
			return
		}
		sel := make([]bool, b.Len)
		flt.Match(b, sel)
		for i, ev := range sample {
			if want := refEval(flt.root, ev); sel[i] != want {
				t.Fatalf("%s on row %d: Match says %v, the row-by-row reading %v", flt, i, sel[i], want)
			}
		}
	})
}
