package ingest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

type foldedCase struct {
	name    string
	in      string
	lim     Limits
	want    []FoldedSample
	wantErr string // substring of the error; "" means success
}

func foldedSample(v int64, frames ...string) FoldedSample {
	return FoldedSample{Stack: frames, Value: v}
}

// foldedCases also seed FuzzParseFolded.
var foldedCases = []foldedCase{
	{name: "empty", in: "", want: nil},
	{name: "blank lines", in: "\n\n \t\r\n", want: nil},
	{name: "one", in: "a;b;c 3", want: []FoldedSample{foldedSample(3, "a", "b", "c")}},
	{name: "single frame", in: "main 1\n", want: []FoldedSample{foldedSample(1, "main")}},
	{
		name: "sum identical stacks in first-seen order",
		in:   "a;b 1\nx;y 5\na;b 2\n",
		want: []FoldedSample{foldedSample(3, "a", "b"), foldedSample(5, "x", "y")},
	},
	{
		name: "frames with spaces",
		in:   "main;net/http.(*conn).serve;func1 (inlined) 7\n",
		want: []FoldedSample{foldedSample(7, "main", "net/http.(*conn).serve", "func1 (inlined)")},
	},
	{
		name: "python frames from py-spy",
		in:   "<module> (app.py:10);handle (app.py:42);sleep (time.py:0) 12\n",
		want: []FoldedSample{foldedSample(12, "<module> (app.py:10)", "handle (app.py:42)", "sleep (time.py:0)")},
	},
	{name: "crlf", in: "a;b 1\r\na;c 2\r\n", want: []FoldedSample{foldedSample(1, "a", "b"), foldedSample(2, "a", "c")}},
	{name: "no final newline", in: "a 1\nb 2", want: []FoldedSample{foldedSample(1, "a"), foldedSample(2, "b")}},
	{name: "zero value skipped", in: "a 0\nb 1\n", want: []FoldedSample{foldedSample(1, "b")}},
	{name: "minus zero", in: "a -0\n", want: nil},
	{name: "leading zeros", in: "a 007\n", want: []FoldedSample{foldedSample(7, "a")}},
	{
		name: "empty frames dropped and merged",
		in:   "a;;b 1\n;a;b; 2\na; ;b 4\n",
		want: []FoldedSample{foldedSample(7, "a", "b")},
	},
	{name: "max value", in: "a 9223372036854775807\n", want: []FoldedSample{foldedSample(9223372036854775807, "a")}},
	{
		name: "unicode frames",
		in:   "主;函数 2\n",
		want: []FoldedSample{foldedSample(2, "主", "函数")},
	},
	{
		name: "invalid utf-8 replaced and merged",
		in:   "a;\xff 1\na;\xfe 2\n",
		want: []FoldedSample{foldedSample(3, "a", "\uFFFD")},
	},
	{name: "not an integer", in: "a 1\nb 2\na;b x\n", wantErr: `line 3: value "x" is not an integer`},
	{name: "float", in: "a 1.5\n", wantErr: `line 1: value "1.5" is not an integer`},
	{name: "plus sign", in: "a +1\n", wantErr: `line 1: value "+1" is not an integer`},
	{name: "lone minus", in: "a -\n", wantErr: `line 1: value "-" is not an integer`},
	{name: "negative", in: "a 1\n\nb 1\n\n\n\nc -2\n", wantErr: "line 7: negative value -2"},
	{name: "empty stack", in: "a 1\n\n\n\n 5\n", wantErr: "line 5: empty stack"},
	{name: "only separators", in: ";; 5\n", wantErr: "line 1: empty stack"},
	{name: "missing value", in: "a;b;c\n", wantErr: `line 1: missing value`},
	{name: "trailing space", in: "a;b \n", wantErr: "line 1: missing value after the last space"},
	{name: "tab is not a separator", in: "a;b\t5\n", wantErr: "line 1: missing value"},
	{name: "value out of range", in: "a 9223372036854775808\n", wantErr: `line 1: value "9223372036854775808" is out of range`},
	{name: "sum overflows", in: "a 9223372036854775807\na 1\n", wantErr: "line 2: sum of values for the stack overflows int64"},
	{
		name:    "long value is cut in the error",
		in:      "a " + strings.Repeat("x", 1000) + "\n",
		wantErr: `line 1: value "` + strings.Repeat("x", 40) + `"... is not an integer`,
	},
	{
		name: "MaxStackDepth reached",
		in:   "a;b;c 1\n",
		lim:  Limits{MaxStackDepth: 3},
		want: []FoldedSample{foldedSample(1, "a", "b", "c")},
	},
	{name: "MaxStackDepth exceeded", in: "a 1\na;b;c;d 1\n", lim: Limits{MaxStackDepth: 3}, wantErr: "line 2: stack depth 4 exceeds MaxStackDepth 3"},
	{
		name: "MaxSamples counts distinct stacks",
		in:   "a 1\nb 1\na 1\nb 1\n",
		lim:  Limits{MaxSamples: 2},
		want: []FoldedSample{foldedSample(2, "a"), foldedSample(2, "b")},
	},
	{name: "MaxSamples exceeded", in: "a 1\nb 1\nc 1\n", lim: Limits{MaxSamples: 2}, wantErr: "line 3: more than MaxSamples 2 distinct stacks"},
	{name: "MaxLineBytes without line ending", in: "abc 1\r\n", lim: Limits{MaxLineBytes: 5}, want: []FoldedSample{foldedSample(1, "abc")}},
	{name: "MaxLineBytes exceeded", in: "a 1\nabcd 1\n", lim: Limits{MaxLineBytes: 5}, wantErr: "line 2: line of 6 bytes exceeds MaxLineBytes 5"},
}

func TestParseFolded(t *testing.T) {
	for _, tc := range foldedCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFolded([]byte(tc.in), tc.lim)
			checkStacks(t, "ParseFolded", tc.in, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParseLines(t *testing.T) {
	for _, tc := range []foldedCase{
		{name: "empty", in: "", want: nil},
		{
			name: "count lines",
			in:   "a;b\nc\na;b\r\n\na;b",
			want: []FoldedSample{foldedSample(3, "a", "b"), foldedSample(1, "c")},
		},
		{
			name: "spaces belong to frames",
			in:   "main;work 5\nmain;work 5\n",
			want: []FoldedSample{foldedSample(2, "main", "work 5")},
		},
		{name: "empty stack", in: "a\n;\n", wantErr: "line 2: empty stack"},
		{name: "MaxSamples", in: "a\nb\n", lim: Limits{MaxSamples: 1}, wantErr: "line 2: more than MaxSamples 1 distinct stacks"},
		{name: "MaxStackDepth", in: "a;b\n", lim: Limits{MaxStackDepth: 1}, wantErr: "line 1: stack depth 2 exceeds MaxStackDepth 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLines([]byte(tc.in), tc.lim)
			checkStacks(t, "ParseLines", tc.in, got, err, tc.want, tc.wantErr)
		})
	}
}

func checkStacks(t *testing.T, fn, in string, got []FoldedSample, err error, want []FoldedSample, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s(%q): got error %v, want one containing %q", fn, in, err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s(%q): got error %v, want none", fn, in, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s(%q) mismatch (-want +got):\n%s", fn, in, diff)
	}
}

func TestParseFoldedErrorTypes(t *testing.T) {
	_, err := ParseFolded([]byte("a 1\nb x\n"), Limits{})
	var fe *FoldedError
	if !errors.As(err, &fe) || fe.Line != 2 {
		t.Fatalf("got %#v, want a *FoldedError at line 2", err)
	}
	if errors.Is(err, ErrLimitExceeded) {
		t.Errorf("syntax error %v matches ErrLimitExceeded", err)
	}
	for _, lim := range []Limits{{MaxSamples: 1}, {MaxStackDepth: 1}, {MaxLineBytes: 3}} {
		_, err := ParseFolded([]byte("a 1\nb;c 1\n"), lim)
		if !errors.Is(err, ErrLimitExceeded) {
			t.Errorf("ParseFolded with %+v: got %v, want an error matching ErrLimitExceeded", lim, err)
		}
	}
}

func TestParseFoldedInternsFrames(t *testing.T) {
	got, err := ParseFolded([]byte("main;a 1\nmain;b 1\nmain;a;b 1\n"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(got[0].Stack[0], got[1].Stack[0]) || !same(got[0].Stack[0], got[2].Stack[0]) {
		t.Errorf("frame %q is not shared between samples", "main")
	}
	if !same(got[1].Stack[1], got[2].Stack[2]) {
		t.Errorf("frame %q is not shared between samples", "b")
	}
}

func TestParseFoldedStacksDoNotAlias(t *testing.T) {
	got, err := ParseFolded([]byte("a;b 1\nc;d 1\n"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].Stack, "x")
	if got[1].Stack[0] != "c" {
		t.Errorf("appending to one stack changed the next: got %q, want %q", got[1].Stack, []string{"c", "d"})
	}
}

func TestParseFoldedDoesNotRetainInput(t *testing.T) {
	in := []byte("a;b 1\n")
	got, err := ParseFolded(in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	copy(in, "xxxxxx")
	if got[0].Stack[0] != "a" || got[0].Stack[1] != "b" {
		t.Errorf("stack changed with the input: got %q, want [a b]", got[0].Stack)
	}
}

func TestParseFoldedManyStacks(t *testing.T) {
	// Enough stacks to need several arena chunks.
	in := genFolded(5000, 1)
	got, err := ParseFolded(in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var lines, total int64
	for l := range strings.Lines(string(in)) {
		v, err := strconv.ParseInt(strings.TrimSpace(l[strings.LastIndexByte(l, ' ')+1:]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		total += v
		lines++
	}
	var sum int64
	seen := make(map[string]bool)
	for _, smp := range got {
		sum += smp.Value
		k := strings.Join(smp.Stack, ";")
		if seen[k] {
			t.Fatalf("stack %q appears twice", k)
		}
		seen[k] = true
	}
	if sum != total {
		t.Errorf("sum of values: got %d, want %d", sum, total)
	}
	if int64(len(got)) >= lines {
		t.Errorf("got %d samples from %d lines, want fewer (the generator repeats stacks)", len(got), lines)
	}
}

// genFolded returns n lines of folded stacks that look like a Go service's:
// a few hundred functions, depths up to 48, many repeated stacks.
func genFolded(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	funcs := make([]string, 400)
	for i := range funcs {
		funcs[i] = fmt.Sprintf("github.com/example/svc/pkg%d.(*Handler%d).Serve%d", i%23, i%7, i)
	}
	roots := []string{"runtime.goexit", "runtime.main", "runtime.mcall"}
	var b strings.Builder
	for range n {
		// Drawing each stack from n/4 seeds makes stacks repeat, as real
		// ones do.
		path := rand.New(rand.NewPCG(uint64(r.IntN(n/4+1)), 7))
		b.WriteString(roots[path.IntN(len(roots))])
		for range 4 + path.IntN(44) {
			b.WriteByte(';')
			b.WriteString(funcs[path.IntN(len(funcs))])
		}
		fmt.Fprintf(&b, " %d\n", 1+r.IntN(100))
	}
	return []byte(b.String())
}

func BenchmarkParseFolded(b *testing.B) {
	in := genFolded(10_000, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseFolded(in, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
