package query

import (
	"fmt"
	"regexp"

	"github.com/hearth-profiler/hearth/internal/storage"
)

// StackFilter holds pprof-style filters on function names, each a regular
// expression matched anywhere in the name (unanchored, as pprof does).
type StackFilter struct {
	// Focus keeps only samples whose stack has a matching frame.
	Focus *regexp.Regexp
	// Ignore drops samples whose stack has a matching frame.
	Ignore *regexp.Regexp
	// Hide removes matching frames from stacks, keeping their samples.
	Hide *regexp.Regexp
	// CallSite, when set, keeps only samples whose stack begins, from
	// its root, with these function names (inlined frames count as
	// frames of their own): Pyroscope's stack trace selector.
	CallSite []string
}

// ParseStackFilter compiles the three expressions; empty ones are unset.
func ParseStackFilter(focus, ignore, hide string) (StackFilter, error) {
	var f StackFilter
	for _, x := range []struct {
		name, expr string
		dst        **regexp.Regexp
	}{{"focus", focus, &f.Focus}, {"ignore", ignore, &f.Ignore}, {"hide", hide, &f.Hide}} {
		if x.expr == "" {
			continue
		}
		re, err := regexp.Compile(x.expr)
		if err != nil {
			return f, &BadRequestError{Msg: fmt.Sprintf("%s: invalid regular expression %q: %v", x.name, x.expr, err)}
		}
		*x.dst = re
	}
	return f, nil
}

// keep returns the storage callback for Focus, Ignore and CallSite, or
// nil.
func (f StackFilter) keep() func(*storage.Symbols) []bool {
	if f.Focus == nil && f.Ignore == nil && len(f.CallSite) == 0 {
		return nil
	}
	return func(s *storage.Symbols) []bool {
		focus := locMatcher(s, f.Focus)
		ignore := locMatcher(s, f.Ignore)
		n := s.NumStacks()
		onFocus := make([]bool, n)
		onIgnore := make([]bool, n)
		site := f.callSites(s)
		keep := make([]bool, n)
		for i := 1; i < n; i++ {
			p, loc := s.StackParent[i], s.StackLoc[i]
			onFocus[i] = onFocus[p] || (focus != nil && focus(loc))
			onIgnore[i] = onIgnore[p] || (ignore != nil && ignore(loc))
			keep[i] = (f.Focus == nil || onFocus[i]) && !onIgnore[i] && (site == nil || site[i] == int32(len(f.CallSite)))
		}
		return keep
	}
}

// callSites returns per stack node how many frames of CallSite its stack
// begins with, -1 once it parts from it; nil without CallSite.
func (f StackFilter) callSites(s *storage.Symbols) []int32 {
	if len(f.CallSite) == 0 {
		return nil
	}
	want := int32(len(f.CallSite))
	st := make([]int32, s.NumStacks())
	for i := 1; i < len(st); i++ {
		k := st[s.StackParent[i]]
		if k < 0 || k == want {
			st[i] = k
			continue
		}
		loc := s.StackLoc[i]
		lines := s.LocationLines(loc)
		match := func(name string) {
			switch {
			case k < 0 || k == want:
			case name == f.CallSite[k]:
				k++
			default:
				k = -1
			}
		}
		if len(lines) == 0 {
			match(frameName(s, loc, storage.Line{}))
		}
		// Lines are innermost first; the stack runs from its root.
		for j := len(lines) - 1; j >= 0; j-- {
			match(frameName(s, loc, lines[j]))
		}
		st[i] = k
	}
	return st
}

// locMatcher returns a cached test of whether any line of a location has a
// function name matching re.
func locMatcher(s *storage.Symbols, re *regexp.Regexp) func(loc uint32) bool {
	if re == nil {
		return nil
	}
	cache := make([]int8, len(s.Locations)) // 0 unknown, 1 no, 2 yes
	return func(loc uint32) bool {
		switch cache[loc] {
		case 1:
			return false
		case 2:
			return true
		}
		m := false
		lines := s.LocationLines(loc)
		if len(lines) == 0 {
			m = re.MatchString(frameName(s, loc, storage.Line{}))
		}
		for _, l := range lines {
			if re.MatchString(frameName(s, loc, l)) {
				m = true
				break
			}
		}
		cache[loc] = 1
		if m {
			cache[loc] = 2
		}
		return m
	}
}

// regexpMatcher is a nil-safe regular expression test.
type regexpMatcher struct{ re *regexp.Regexp }

func (m *regexpMatcher) match(s string) bool { return m != nil && m.re != nil && m.re.MatchString(s) }
