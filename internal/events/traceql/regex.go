package traceql

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Limits on regular expressions, so that one filter cannot make the
// server build huge automata: a pattern's length, the size of its program
// estimated before it is built, and the sum of the sizes over a filter.
const (
	maxRegexBytes      = 16 << 10
	maxRegexInsts      = 20_000
	maxFilterRegexInst = 100_000
)

// matchKind is how a matcher decides: most filters' patterns are a
// literal, a list of literals or a literal with .* around it, which need no
// regular expression engine at all.
type matchKind uint8

const (
	mAny      matchKind = iota // .*
	mLiteral                   // abc
	mSet                       // GET|POST|PUT
	mPrefix                    // abc.*
	mSuffix                    // .*abc
	mContains                  // .*abc.*
	mRegexp                    // anything else
)

// matcher is a compiled =~ pattern, anchored at both ends, with . matching
// newlines too, as Tempo's and Prometheus' are.
type matcher struct {
	kind matchKind
	lit  string
	set  map[string]struct{}
	re   *regexp.Regexp
}

// isLiteral says whether s has no regular expression syntax at all.
func isLiteral(s string) bool { return regexp.QuoteMeta(s) == s }

// compileRegex compiles pattern. It returns the matcher, the size of its
// program (0 for the fast paths), or a message saying what is wrong.
func compileRegex(pattern string) (*matcher, int, string) {
	if len(pattern) > maxRegexBytes {
		return nil, 0, fmt.Sprintf("regular expression is %d bytes, limit is %d", len(pattern), maxRegexBytes)
	}
	// Parse the pattern alone first: "a)|(b" must be an error, not an
	// expression that the anchoring wrapper happens to balance.
	tree, err := syntax.Parse(pattern, syntax.Perl|syntax.DotNL)
	if err != nil {
		return nil, 0, "invalid regular expression: " + regexErr(err)
	}
	size := estimateSize(tree)
	if size > maxRegexInsts {
		return nil, 0, fmt.Sprintf("regular expression is too complex (about %d instructions, limit is %d)", size, maxRegexInsts)
	}
	m := &matcher{kind: mRegexp}
	switch {
	case pattern == ".*":
		m.kind = mAny
	case isLiteral(pattern):
		m.kind, m.lit = mLiteral, pattern
	case strings.HasSuffix(pattern, ".*") && isLiteral(strings.TrimSuffix(pattern, ".*")):
		m.kind, m.lit = mPrefix, strings.TrimSuffix(pattern, ".*")
	case strings.HasPrefix(pattern, ".*") && strings.HasSuffix(pattern, ".*") && len(pattern) >= 4 && isLiteral(pattern[2:len(pattern)-2]):
		m.kind, m.lit = mContains, pattern[2:len(pattern)-2]
	case strings.HasPrefix(pattern, ".*") && isLiteral(pattern[2:]):
		m.kind, m.lit = mSuffix, pattern[2:]
	default:
		parts := strings.Split(pattern, "|")
		all := true
		for _, p := range parts {
			if !isLiteral(p) {
				all = false
				break
			}
		}
		if all {
			m.kind = mSet
			m.set = make(map[string]struct{}, len(parts))
			for _, p := range parts {
				m.set[p] = struct{}{}
			}
		}
	}
	if m.kind != mRegexp {
		return m, 0, ""
	}
	re, err := regexp.Compile("^(?s:" + pattern + ")$")
	if err != nil {
		return nil, 0, "invalid regular expression: " + regexErr(err)
	}
	m.re = re
	return m, size, ""
}

// regexErr is the part of a regexp error worth showing: the package's
// "error parsing regexp: " prefix says nothing the caller does not.
func regexErr(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// estimateSize is an upper bound on the number of instructions re compiles
// to, computed without building anything: simplifying x{1000}{1000}
// first would itself build the million copies that the limit forbids.
func estimateSize(re *syntax.Regexp) int {
	const capAt = 1 << 30
	add := func(a, b int) int { return min(a+b, capAt) }
	switch re.Op {
	case syntax.OpLiteral:
		return max(len(re.Rune), 1)
	case syntax.OpConcat, syntax.OpAlternate:
		n := len(re.Sub)
		for _, s := range re.Sub {
			n = add(n, estimateSize(s))
		}
		return n
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return add(estimateSize(re.Sub[0]), 2)
	case syntax.OpRepeat:
		count := re.Max
		if count < 0 {
			count = re.Min + 1
		}
		sub := estimateSize(re.Sub[0]) + 2
		if count > 0 && sub > capAt/count {
			return capAt
		}
		return max(sub*count, 1)
	}
	return 1
}

// matchString says whether s matches; memo, if not nil, remembers
// answers of a general regular expression per distinct string.
func (m *matcher) matchString(s string, memo *regexMemo) bool {
	switch m.kind {
	case mAny:
		return true
	case mLiteral:
		return s == m.lit
	case mSet:
		_, ok := m.set[s]
		return ok
	case mPrefix:
		return strings.HasPrefix(s, m.lit)
	case mSuffix:
		return strings.HasSuffix(s, m.lit)
	case mContains:
		return strings.Contains(s, m.lit)
	}
	if memo == nil {
		return m.re.MatchString(s)
	}
	return memo.match(m.re, s)
}

// matchBytes is matchString for a byte slice, without allocating.
func (m *matcher) matchBytes(b []byte) bool {
	switch m.kind {
	case mAny:
		return true
	case mLiteral:
		return string(b) == m.lit
	case mSet:
		_, ok := m.set[string(b)]
		return ok
	case mPrefix:
		return bytes.HasPrefix(b, []byte(m.lit))
	case mSuffix:
		return bytes.HasSuffix(b, []byte(m.lit))
	case mContains:
		return bytes.Contains(b, []byte(m.lit))
	}
	return m.re.Match(b)
}

// maxMemo caps a regexMemo: on a field whose values rarely repeat (an ID
// per request) remembering them only costs memory.
const maxMemo = 4096

// regexMemo remembers, within one batch, whether each distinct string
// matched: attribute values repeat a lot (a few routes, hosts, versions),
// and a map lookup is far cheaper than running the automaton.
type regexMemo struct {
	m        map[string]bool
	last     string
	lastOK   bool
	haveLast bool
}

func (r *regexMemo) reset() {
	clear(r.m)
	r.haveLast = false
}

func (r *regexMemo) match(re *regexp.Regexp, s string) bool {
	// Runs of one value are common (storage sorts by service and time);
	// comparing with the last value first skips even the hash.
	if r.haveLast && s == r.last {
		return r.lastOK
	}
	ok, found := r.m[s]
	if !found {
		ok = re.MatchString(s)
		if r.m == nil {
			r.m = make(map[string]bool)
		}
		if len(r.m) < maxMemo {
			r.m[s] = ok
		}
	}
	r.last, r.lastOK, r.haveLast = s, ok, true
	return ok
}
