package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/hearth-profiler/hearth/internal/limits"
)

// FoldedSample is one stack and its value, as decoded from folded or lines
// input.
type FoldedSample struct {
	// Stack holds the frames, root first. Frames are shared between the
	// samples of one parse: treat them as read-only.
	Stack []string
	// Value is the sum of the values of every line with this stack; it is
	// positive.
	Value int64
}

// Limits bounds what a decoder accepts, so that one request cannot take
// unbounded memory or time. A zero field means no limit.
type Limits struct {
	// MaxSamples is the most distinct stacks one profile may hold, counted
	// after identical stacks are merged.
	MaxSamples int
	// MaxStackDepth is the most frames one stack may have.
	MaxStackDepth int
	// MaxLineBytes is the longest line accepted, in bytes, not counting the
	// line ending.
	MaxLineBytes int
}

// ErrLimitExceeded is matched, through errors.Is, by every error that reports
// input going past a limit, such as a field of Limits or
// MaxSampleTypeConfigBytes. Callers may answer it with "413 Content Too
// Large" rather than "400 Bad Request".
var ErrLimitExceeded = errors.New("limit exceeded")

// FoldedError reports malformed folded or lines input, or input that goes
// past a Limits field.
type FoldedError struct {
	Line int    // 1-based line number
	Msg  string // what is wrong with the line
	Err  error  // ErrLimitExceeded when a limit was passed, else nil
	// Limit names the tenant limit that was passed (limits.MaxSamples or
	// limits.MaxStackDepth), "" for any other error.
	Limit string
}

// Error formats the error as "line 3: value "x" is not an integer".
func (e *FoldedError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Unwrap returns ErrLimitExceeded for errors about limits, else nil.
func (e *FoldedError) Unwrap() error { return e.Err }

// ParseFolded decodes the Pyroscope "folded" format (format=folded, the
// collapsed stacks of Brendan Gregg's stackcollapse scripts): one sample per
// line, "frame;frame;frame VALUE", root frame first.
//
// The value follows the last space of the line and is a non-negative decimal
// integer; frames may contain spaces but not ';'. A trailing "\r" is ignored,
// as are blank lines, lines whose value is 0, and empty (or all-blank) frames.
// Frames are kept byte for byte, except that invalid UTF-8 is replaced by
// U+FFFD. Identical stacks are summed; samples come out in the order in which
// their stacks first appear.
//
// Errors are of type *FoldedError and name the line and the cause, for
// example `line 3: value "x" is not an integer`, `line 5: empty stack` or
// `line 7: negative value -2`. An input without samples is not an error.
func ParseFolded(data []byte, lim Limits) ([]FoldedSample, error) {
	return parseStacks(data, lim, true)
}

// ParseLines decodes the Pyroscope "lines" format (format=lines): every line
// is one stack, "frame;frame;frame" root first, worth 1. The whole line is
// the stack, spaces included; otherwise it follows the rules of ParseFolded.
func ParseLines(data []byte, lim Limits) ([]FoldedSample, error) {
	return parseStacks(data, lim, false)
}

// stackParser holds the state of one ParseFolded or ParseLines call. It
// interns frames so that each distinct frame is one string however often it
// appears, and it carves the Stack slices out of shared chunks.
type stackParser struct {
	lim     Limits
	frames  map[string]string // interned frames, keyed by their raw bytes
	stacks  map[string]int    // index into samples, keyed by the normalized stack
	samples []FoldedSample
	arena   []string // free space for Stack slices
	chunk   int      // size of the last arena chunk
	norm    []byte   // scratch for stacks that hold empty frames
	fixed   bool     // some frame had invalid UTF-8 replaced
}

func parseStacks(data []byte, lim Limits, withValue bool) ([]FoldedSample, error) {
	p := stackParser{
		lim:    lim,
		frames: make(map[string]string),
		stacks: make(map[string]int),
	}
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		if lim.MaxLineBytes > 0 && len(l) > lim.MaxLineBytes {
			return nil, &FoldedError{Line: line, Msg: fmt.Sprintf("line of %d bytes exceeds MaxLineBytes %d", len(l), lim.MaxLineBytes), Err: ErrLimitExceeded}
		}
		if isBlank(l) {
			continue
		}
		stack, value := l, int64(1)
		if withValue {
			sp := bytes.LastIndexByte(l, ' ')
			if sp < 0 {
				return nil, &FoldedError{Line: line, Msg: `missing value: want "frame;frame VALUE"`}
			}
			v, msg := parseFoldedValue(l[sp+1:])
			if msg != "" {
				return nil, &FoldedError{Line: line, Msg: msg}
			}
			stack, value = l[:sp], v
		}
		if err := p.add(stack, value); err != nil {
			err.Line = line
			return nil, err
		}
	}
	if p.fixed {
		if err := p.remerge(); err != nil {
			err.Line = line
			return nil, err
		}
	}
	return p.samples, nil
}

// add adds value to stack. The error it returns lacks its line number.
func (p *stackParser) add(stack []byte, value int64) *FoldedError {
	depth, clean := countFrames(stack)
	key := stack
	if !clean {
		key = p.normalize(stack)
	}
	if depth == 0 {
		return &FoldedError{Msg: "empty stack"}
	}
	if p.lim.MaxStackDepth > 0 && depth > p.lim.MaxStackDepth {
		return &FoldedError{Msg: fmt.Sprintf("stack depth %d exceeds MaxStackDepth %d", depth, p.lim.MaxStackDepth), Err: ErrLimitExceeded, Limit: limits.MaxStackDepth}
	}
	if value == 0 {
		return nil
	}
	if i, ok := p.stacks[string(key)]; ok {
		if p.samples[i].Value > math.MaxInt64-value {
			return &FoldedError{Msg: "sum of values for the stack overflows int64"}
		}
		p.samples[i].Value += value
		return nil
	}
	if p.lim.MaxSamples > 0 && len(p.samples) >= p.lim.MaxSamples {
		return &FoldedError{Msg: fmt.Sprintf("more than MaxSamples %d distinct stacks", p.lim.MaxSamples), Err: ErrLimitExceeded, Limit: limits.MaxSamples}
	}
	frames := p.alloc(depth)
	rest := key
	for i := range frames {
		f := rest
		if j := bytes.IndexByte(rest, ';'); j >= 0 {
			f, rest = rest[:j], rest[j+1:]
		}
		frames[i] = p.intern(f)
	}
	var k string
	if clean {
		// key is part of the caller's data, which outlives p.stacks and
		// does not change during the call: use it in place rather than
		// copy every distinct stack.
		k = unsafe.String(unsafe.SliceData(key), len(key))
	} else {
		k = string(key) // in p.norm, which is reused
	}
	p.stacks[k] = len(p.samples)
	p.samples = append(p.samples, FoldedSample{Stack: frames, Value: value})
	return nil
}

// countFrames returns the number of non-empty frames in stack and whether
// every frame is non-empty, in which case stack needs no normalizing.
func countFrames(stack []byte) (n int, clean bool) {
	clean = true
	for {
		j := bytes.IndexByte(stack, ';')
		f := stack
		if j >= 0 {
			f = stack[:j]
		}
		if isEmptyFrame(f) {
			clean = false
		} else {
			n++
		}
		if j < 0 {
			return n, clean
		}
		stack = stack[j+1:]
	}
}

// normalize returns stack without its empty frames, in p.norm.
func (p *stackParser) normalize(stack []byte) []byte {
	p.norm = p.norm[:0]
	for {
		j := bytes.IndexByte(stack, ';')
		f := stack
		if j >= 0 {
			f = stack[:j]
		}
		if !isEmptyFrame(f) {
			if len(p.norm) > 0 {
				p.norm = append(p.norm, ';')
			}
			p.norm = append(p.norm, f...)
		}
		if j < 0 {
			return p.norm
		}
		stack = stack[j+1:]
	}
}

// alloc returns a slice of n frames carved from the arena. Its capacity is n,
// so appending to one Stack cannot overwrite the next.
func (p *stackParser) alloc(n int) []string {
	if cap(p.arena)-len(p.arena) < n {
		p.chunk = min(max(2*p.chunk, 256), 16384)
		p.arena = make([]string, 0, max(n, p.chunk))
	}
	l := len(p.arena)
	p.arena = p.arena[:l+n]
	return p.arena[l : l+n : l+n]
}

// intern returns the one string for frame f.
func (p *stackParser) intern(f []byte) string {
	if s, ok := p.frames[string(f)]; ok { // does not allocate
		return s
	}
	s := string(f)
	v := s
	if !utf8.ValidString(s) {
		v = strings.ToValidUTF8(s, "\uFFFD")
		p.fixed = true
	}
	p.frames[s] = v
	return v
}

// remerge sums samples whose stacks became identical when invalid UTF-8 was
// replaced. It runs only for such input. The error it returns lacks its line
// number.
func (p *stackParser) remerge() *FoldedError {
	seen := make(map[string]int, len(p.samples))
	out := p.samples[:0]
	for _, s := range p.samples {
		// Frames are non-empty and hold no ';', so joining is unambiguous.
		k := strings.Join(s.Stack, ";")
		if i, ok := seen[k]; ok {
			if out[i].Value > math.MaxInt64-s.Value {
				return &FoldedError{Msg: "sum of values for a stack overflows int64"}
			}
			out[i].Value += s.Value
			continue
		}
		seen[k] = len(out)
		out = append(out, s)
	}
	clear(p.samples[len(out):])
	p.samples = out
	return nil
}

// parseFoldedValue parses the value of a folded line. On failure it returns
// the message of the error.
func parseFoldedValue(b []byte) (int64, string) {
	if len(b) == 0 {
		return 0, `missing value after the last space: want "frame;frame VALUE"`
	}
	neg := b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) == 0 {
		return 0, fmt.Sprintf("value %s is not an integer", quoteTrunc(b))
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Sprintf("value %s is not an integer", quoteTrunc(b))
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, fmt.Sprintf("value %s is out of range", quoteTrunc(b))
		}
		v = v*10 + d
	}
	if neg {
		if v == 0 {
			return 0, ""
		}
		return 0, fmt.Sprintf("negative value -%d", v)
	}
	return v, ""
}

// isEmptyFrame reports whether f is empty or holds only spaces and tabs.
func isEmptyFrame(f []byte) bool {
	if len(f) > 0 && f[0] != ' ' && f[0] != '\t' {
		return false // the common case, decided by one byte
	}
	return isBlank(f)
}

// isBlank reports whether b holds only spaces and tabs.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// quoteTrunc quotes b for an error message, cut to a readable length.
func quoteTrunc(b []byte) string {
	const maxLen = 40
	if len(b) > maxLen {
		return fmt.Sprintf("%q...", b[:maxLen])
	}
	return fmt.Sprintf("%q", b)
}
